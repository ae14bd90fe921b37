// Tinkerbell web app: sign in anonymously, submit a brief, follow the task live,
// show the strategy as pictures; in English or Romanian.
//
// Everything the model wrote is untrusted: it reaches the page only through
// textContent and attributes, never as markup.
//
// Modules: i18n.js (catalogs, formats), form.js (the brief, the PDF drop zone and
// upload sessions), task.js (the live task, the strategy, the recent list),
// charts.js (SVG pictures), markdown.js (export), upload.js, state.js, dom.js.

import { initializeApp } from 'firebase/app';
import {
  browserLocalPersistence,
  browserSessionPersistence,
  connectAuthEmulator,
  indexedDBLocalPersistence,
  initializeAuth,
  onAuthStateChanged,
  signInAnonymously,
  signOut,
} from 'firebase/auth';
import { connectFirestoreEmulator, getFirestore } from 'firebase/firestore';

import { startAppCheck } from './appcheck.js';
import { $ } from './dom.js';
import { defaultStrategyLanguage, renderFormTexts, wireForm } from './form.js';
import {
  language,
  pickLanguage,
  rememberLanguage,
  setLanguage,
  storedLanguage,
  t,
  translatePage,
} from './i18n.js';
import { openSharedView, sharedId, wireSharing } from './share.js';
import { wireVersions } from './versions.js';
import { refreshMessages, say, setText, showMessage, state } from './state.js';
import {
  apiErrorText,
  authorizedFetch,
  closeTask,
  followRecent,
  openTask,
  renderRecent,
  rerenderTask,
  wireTaskPanel,
} from './task.js';

const CONFIG_URL = '/dist/config.json'; // absolute: a shared strategy's page is /s/{id}

// ------------------------------------------------------------------ start

async function main() {
  setLanguage(pickLanguage(storedLanguage(), navigator.languages ?? [navigator.language]));
  wireLanguageSwitch();
  wireForm();
  wireTaskPanel();
  wireSharing();
  wireVersions();
  $('forget-me').addEventListener('click', forgetMe);
  applyLanguage();
  setText('auth-status', say('auth.signing_in'));
  try {
    state.config = await loadConfig();
  } catch (error) {
    setAuthStatus(say('auth.not_configured', { detail: error.message }), 'error');
    return;
  }
  connectFirebase(state.config);
  const shareId = sharedId();
  if (shareId) {
    await openSharedView(shareId); // a read-only link: no sign-in
    return;
  }
  onAuthStateChanged(state.auth, (user) => {
    if (user) signedIn(user);
  });
  try {
    await state.auth.authStateReady();
    if (!state.auth.currentUser) await signInAnonymously(state.auth);
  } catch (error) {
    setAuthStatus(say('auth.failed', { detail: error.message }), 'error');
  }
}

async function loadConfig() {
  const response = await fetch(CONFIG_URL, { cache: 'no-store' });
  if (!response.ok) throw new Error(`${CONFIG_URL} answered ${response.status}`);
  const config = await response.json();
  for (const key of ['apiKey', 'projectId', 'submitUrl', 'statusUrl']) {
    if (!config[key]) throw new Error(`${CONFIG_URL} has no ${key}`);
  }
  config.submitUrl = config.submitUrl.replace(/\/+$/, '');
  config.statusUrl = config.statusUrl.replace(/\/+$/, '');
  return config;
}

function connectFirebase(config) {
  const app = initializeApp({
    apiKey: config.apiKey,
    projectId: config.projectId,
    authDomain: config.authDomain,
    appId: config.appId,
  });
  startAppCheck(app, config); // before the other services, which then send its tokens too
  // getAuth() with the persistence it would pick, but without its popup/redirect
  // resolver: the app signs in anonymously only, and on mobile browsers and Safari that
  // resolver loads Google's gapi script and an auth frame at once, which the
  // Content-Security-Policy (infra/hosting.py) refuses.
  state.auth = initializeAuth(app, {
    persistence: [indexedDBLocalPersistence, browserLocalPersistence, browserSessionPersistence],
  });
  state.db = getFirestore(app);
  if (config.authEmulatorUrl) {
    connectAuthEmulator(state.auth, config.authEmulatorUrl, { disableWarnings: true });
  }
  if (config.firestoreEmulatorHost) {
    const [host, port] = splitHostPort(config.firestoreEmulatorHost);
    connectFirestoreEmulator(state.db, host, port);
  }
  $('env-badge').hidden = !(config.authEmulatorUrl || config.firestoreEmulatorHost);
}

function splitHostPort(value) {
  const at = value.lastIndexOf(':');
  return [value.slice(0, at), Number(value.slice(at + 1))];
}

function signedIn(user) {
  if (state.user?.uid === user.uid) return;
  state.user = user;
  document.body.dataset.uid = user.uid;
  setAuthStatus(say('auth.signed_in', { id: user.uid.slice(0, 6) }), 'ok');
  $('forget-me').hidden = false;
  $('submit').disabled = false;
  followRecent(user.uid);
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('task');
  if (fromHash && !state.taskId) openTask(fromHash);
}

/** "Delete my data" (asked first): DELETE /v1/me until done, then a new guest. */
async function forgetMe() {
  const button = $('forget-me');
  if (button.getAttribute('aria-disabled') === 'true' || !state.user) return;
  if (!window.confirm(t('forget.confirm'))) return;
  button.setAttribute('aria-disabled', 'true');
  showMessage('account-message', say('forget.working'));
  try {
    let erased = { done: false, tasks: 0 };
    let tasks = 0;
    for (let round = 0; round < 30 && !erased.done; round += 1) {
      const response = await authorizedFetch(`${state.config.statusUrl}/v1/me`, { method: 'DELETE' });
      if (response.status !== 200 && response.status !== 202) {
        const detail = await apiErrorText(response);
        showMessage('account-message', () => t('forget.failed', { detail }));
        return;
      }
      erased = await response.json();
      tasks += erased.tasks ?? 0;
    }
    state.unsubscribeRecent?.();
    closeTask();
    state.user = null;
    state.recent = [];
    renderRecent();
    await signOut(state.auth); // the Auth user is gone: start again as a new guest
    await signInAnonymously(state.auth);
    showMessage('account-message', () => t('forget.done', { tasks }));
  } catch (error) {
    showMessage('account-message', say('forget.failed', { detail: error.message }));
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

function setAuthStatus(message, kind) {
  setText('auth-status', message);
  $('auth-status').dataset.state = kind;
}

// ------------------------------------------------------------------ language

function wireLanguageSwitch() {
  for (const button of document.querySelectorAll('[data-ui-language]')) {
    button.addEventListener('click', () => switchLanguage(button.dataset.uiLanguage));
  }
}

function switchLanguage(next) {
  if (next === language()) return;
  setLanguage(next);
  rememberLanguage(next);
  applyLanguage();
}

/** Put every text on the page into the current language (<html lang> follows). */
function applyLanguage() {
  const current = language();
  translatePage();
  for (const button of document.querySelectorAll('[data-ui-language]')) {
    button.setAttribute('aria-pressed', String(button.dataset.uiLanguage === current));
  }
  defaultStrategyLanguage(current);
  renderFormTexts();
  refreshMessages();
  rerenderTask();
  renderRecent();
}

main();
