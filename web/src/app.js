// Tinkerbell web app: sign in anonymously, submit a brief, follow the task live.
//
// Everything the model wrote is untrusted: it reaches the page only through
// textContent and attributes, never as markup.

import { initializeApp } from 'firebase/app';
import {
  connectAuthEmulator,
  getAuth,
  onAuthStateChanged,
  signInAnonymously,
} from 'firebase/auth';
import {
  collection,
  connectFirestoreEmulator,
  doc,
  getFirestore,
  limit,
  onSnapshot,
  orderBy,
  query,
  where,
} from 'firebase/firestore';

const CONFIG_URL = 'dist/config.json';
const MAX_BRIEF_CHARS = 20000;
const MAX_PDF_BYTES = 30 * 1024 * 1024;
const MAX_URLS = 20;
const RECENT_LIMIT = 10;
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
const FIELDS = ['brief', 'urls', 'pdf', 'language', 'image', 'grounding'];
// Server fields shown next to another control.
const FIELD_ALIASES = { upload_id: 'pdf' };
const BCP47 = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;
const STATUS_LABELS = {
  PENDING: 'Pending',
  PROCESSING: 'Processing',
  COMPLETED: 'Completed',
  FAILED: 'Failed',
  CANCELLED: 'Cancelled',
};

const $ = (id) => document.getElementById(id);
const eur = new Intl.NumberFormat('en', { style: 'currency', currency: 'EUR', maximumFractionDigits: 0 });
const percentFormat = new Intl.NumberFormat('en', { style: 'percent', maximumFractionDigits: 0 });
const dateFormat = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' });

const state = {
  config: null,
  auth: null,
  db: null,
  user: null,
  taskId: null,
  unsubscribeTask: null,
  unsubscribeRecent: null,
  lastStatus: null,
  imageTaskId: null,
  imageUrl: null,
  idempotency: null, // {body, key}: a retry of the same request reuses its key
};

// ------------------------------------------------------------------ start

async function main() {
  wireForm();
  try {
    state.config = await loadConfig();
  } catch (error) {
    setAuthStatus(`Not configured: ${error.message}`, 'error');
    return;
  }
  const { config } = state;
  const app = initializeApp({
    apiKey: config.apiKey,
    projectId: config.projectId,
    authDomain: config.authDomain,
    appId: config.appId,
  });
  state.auth = getAuth(app);
  state.db = getFirestore(app);
  if (config.authEmulatorUrl) {
    connectAuthEmulator(state.auth, config.authEmulatorUrl, { disableWarnings: true });
  }
  if (config.firestoreEmulatorHost) {
    const [host, port] = splitHostPort(config.firestoreEmulatorHost);
    connectFirestoreEmulator(state.db, host, port);
  }
  $('env-badge').hidden = !(config.authEmulatorUrl || config.firestoreEmulatorHost);

  onAuthStateChanged(state.auth, (user) => {
    if (user) signedIn(user);
  });
  try {
    await state.auth.authStateReady();
    if (!state.auth.currentUser) await signInAnonymously(state.auth);
  } catch (error) {
    setAuthStatus(`Sign-in failed: ${error.message}`, 'error');
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

function splitHostPort(value) {
  const at = value.lastIndexOf(':');
  return [value.slice(0, at), Number(value.slice(at + 1))];
}

function signedIn(user) {
  if (state.user?.uid === user.uid) return;
  state.user = user;
  document.body.dataset.uid = user.uid;
  setAuthStatus(`Signed in · guest ${user.uid.slice(0, 6)}`, 'ok');
  $('submit').disabled = false;
  followRecent(user.uid);
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('task');
  if (fromHash && !state.taskId) openTask(fromHash);
}

function setAuthStatus(text, kind) {
  const element = $('auth-status');
  element.textContent = text;
  element.dataset.state = kind;
}

// ------------------------------------------------------------------ form

function wireForm() {
  const brief = $('brief');
  const updateCounter = () => {
    const length = brief.value.length;
    const counter = $('brief-counter');
    counter.textContent = `${length.toLocaleString('en')} / ${MAX_BRIEF_CHARS.toLocaleString('en')}`;
    counter.classList.toggle('near-limit', length > MAX_BRIEF_CHARS * 0.9);
  };
  brief.addEventListener('input', updateCounter);
  updateCounter();

  $('language').addEventListener('change', () => {
    const other = $('language').value === 'other';
    $('language-other-field').hidden = !other;
    if (other) $('language-other').focus();
  });

  for (const name of FIELDS) {
    const control = $(name);
    control.addEventListener(name === 'pdf' ? 'change' : 'input', () => clearFieldError(name));
  }
  $('language-other').addEventListener('input', () => clearFieldError('language'));
  $('pdf').addEventListener('change', () => {
    const problem = checkPdf($('pdf').files[0]);
    if (problem) showFieldError('pdf', problem);
  });

  $('brief-form').addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
  $('cancel').addEventListener('click', cancelTask);
}

function readForm() {
  const language = $('language').value === 'other' ? $('language-other').value.trim() : $('language').value;
  return {
    brief: $('brief').value,
    urls: $('urls')
      .value.split('\n')
      .map((line) => line.trim())
      .filter(Boolean),
    language,
    image: $('image').checked,
    grounding: $('grounding').checked,
    pdf: $('pdf').files[0] ?? null,
  };
}

function checkForm(input) {
  const problems = [];
  const brief = input.brief.trim();
  if (!brief) problems.push(['brief', 'brief: must not be empty']);
  else if (brief.length > MAX_BRIEF_CHARS) {
    problems.push(['brief', `brief: must be at most ${MAX_BRIEF_CHARS.toLocaleString('en')} characters`]);
  }
  if (input.urls.length > MAX_URLS) problems.push(['urls', `urls: at most ${MAX_URLS} URLs`]);
  const badUrl = input.urls.findIndex((url) => !isHttpUrl(url));
  if (badUrl >= 0) problems.push(['urls', `urls: line ${badUrl + 1} is not an http(s) address`]);
  if (!BCP47.test(input.language)) {
    problems.push(['language', 'language: give a BCP 47 tag such as en, ro or de-AT']);
  }
  const pdfProblem = checkPdf(input.pdf);
  if (pdfProblem) problems.push(['pdf', pdfProblem]);
  return problems;
}

function checkPdf(file) {
  if (!file) return null;
  if (file.size > MAX_PDF_BYTES) {
    const mib = (file.size / (1024 * 1024)).toFixed(1);
    return `pdf: the file has ${mib} MiB; the limit is 30 MiB`;
  }
  if (file.size === 0) return 'pdf: the file is empty';
  return null;
}

function isHttpUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

async function submit() {
  clearErrors();
  if (!state.user) return;
  const input = readForm();
  const problems = checkForm(input);
  if (problems.length) {
    for (const [field, message] of problems) showFieldError(field, message);
    focusField(problems[0][0]);
    return;
  }
  const button = $('submit');
  button.disabled = true;
  button.textContent = 'Sending…';
  try {
    const { body, contentType, fingerprint } = encodeRequest(input);
    if (state.idempotency?.fingerprint !== fingerprint) {
      state.idempotency = { fingerprint, key: crypto.randomUUID() };
    }
    const headers = {
      Authorization: `Bearer ${await state.user.getIdToken()}`,
      'Idempotency-Key': state.idempotency.key,
    };
    if (contentType) headers['Content-Type'] = contentType;
    const response = await fetch(`${state.config.submitUrl}/v1/strategies`, { method: 'POST', headers, body });
    const answer = await readJson(response);
    if (!response.ok) {
      state.idempotency = null; // the server refused it: nothing to deduplicate
      showApiError(answer, response.status);
      return;
    }
    state.idempotency = null;
    openTask(answer.task_id);
  } catch (error) {
    // A network failure: a retry of the same request reuses the idempotency key.
    showFormError(`Could not reach Tinkerbell (${error.message}). Try again.`);
  } finally {
    button.disabled = false;
    button.textContent = 'Create strategy';
  }
}

function encodeRequest(input) {
  const fields = {
    brief: input.brief,
    urls: input.urls,
    language: input.language,
    image: input.image,
    grounding: input.grounding,
  };
  if (!input.urls.length) delete fields.urls;
  const pdf = input.pdf;
  const fingerprint = JSON.stringify([fields, pdf && [pdf.name, pdf.size, pdf.lastModified]]);
  if (!pdf) return { body: JSON.stringify(fields), contentType: 'application/json', fingerprint };
  const form = new FormData();
  form.append('brief', fields.brief);
  for (const url of input.urls) form.append('urls', url);
  form.append('language', fields.language);
  form.append('image', String(fields.image));
  form.append('grounding', String(fields.grounding));
  form.append('pdf', pdf, pdf.name);
  return { body: form, contentType: null, fingerprint }; // the browser sets the boundary
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function showApiError(answer, status) {
  const error = answer?.error;
  const message = error?.message || `The service answered ${status}.`;
  const field = FIELD_ALIASES[error?.field] ?? error?.field;
  if (status === 413 && !field) {
    showFieldError('pdf', message);
    focusField('pdf');
  } else if (FIELDS.includes(field)) {
    showFieldError(field, message);
    focusField(field);
  } else if (status === 401) {
    showFormError(`${message} Reload the page to sign in again.`);
  } else {
    showFormError(message);
  }
}

function showFieldError(field, message) {
  const element = $(`${field}-error`);
  element.textContent = message;
  element.hidden = false;
  const control = field === 'language' && $('language').value === 'other' ? $('language-other') : $(field);
  control.setAttribute('aria-invalid', 'true');
  control.closest('.field')?.classList.add('has-error');
}

function clearFieldError(field) {
  const element = $(`${field}-error`);
  element.textContent = '';
  element.hidden = true;
  for (const control of [$(field), field === 'language' ? $('language-other') : null]) {
    if (!control) continue;
    control.removeAttribute('aria-invalid');
    control.closest('.field')?.classList.remove('has-error');
  }
}

function focusField(field) {
  const control = field === 'language' && $('language').value === 'other' ? $('language-other') : $(field);
  control.focus();
}

function showFormError(message) {
  const element = $('form-error');
  element.textContent = message;
  element.hidden = false;
}

function clearErrors() {
  for (const field of FIELDS) clearFieldError(field);
  $('form-error').hidden = true;
  $('form-error').textContent = '';
}

// ------------------------------------------------------------------ one task

function openTask(taskId) {
  state.unsubscribeTask?.();
  state.taskId = taskId;
  state.lastStatus = null;
  history.replaceState(null, '', `#task=${encodeURIComponent(taskId)}`);
  resetTaskView(taskId);
  state.unsubscribeTask = onSnapshot(
    doc(state.db, 'tasks', taskId),
    (snapshot) => {
      if (state.taskId !== taskId) return;
      if (snapshot.exists()) renderTask(taskId, snapshot.data());
    },
    (error) => {
      if (state.taskId !== taskId) return;
      const denied = error.code === 'permission-denied';
      showTaskActionError(denied ? 'This task does not exist or is not yours.' : `Live updates stopped: ${error.message}`);
    },
  );
  markCurrentRecent();
}

function resetTaskView(taskId) {
  const panel = $('task-panel');
  panel.hidden = false;
  panel.dataset.taskId = taskId;
  $('task-id').textContent = `Task ${taskId}`;
  $('task-status').dataset.status = '';
  $('task-status').textContent = 'Sent';
  $('progress-box').hidden = true;
  $('cancel').hidden = true;
  $('task-action-error').hidden = true;
  $('task-error').hidden = true;
  $('strategy').hidden = true;
  $('task-heading').textContent = 'Strategy';
  clearImage();
  if (window.matchMedia('(max-width: 900px)').matches) panel.scrollIntoView({ behavior: 'smooth' });
}

function renderTask(taskId, task) {
  const status = task.status;
  setStatusBadge($('task-status'), status);
  if (status !== state.lastStatus) {
    $('live').textContent = `Task ${STATUS_LABELS[status] ?? status}`;
    state.lastStatus = status;
  }
  const finished = TERMINAL.has(status);
  $('cancel').hidden = finished;
  $('cancel').disabled = false;

  const progress = task.progress;
  $('progress-box').hidden = finished;
  if (!finished) {
    const percent = clampPercent(progress?.percent ?? 0);
    $('progress-stage').textContent = humanStage(progress?.stage ?? (status === 'PENDING' ? 'queued' : 'working'));
    $('progress-percent').textContent = `${percent}%`;
    $('progress-bar').value = percent;
    $('progress-bar').setAttribute('aria-valuetext', `${percent}%`);
    $('progress-message').textContent = progress?.message ?? '';
  }

  $('task-error').hidden = status !== 'FAILED' && status !== 'CANCELLED';
  if (status === 'FAILED') {
    $('task-error').querySelector('h3').textContent = 'The strategy could not be made';
    $('task-error-message').textContent = task.error?.message ?? 'Something went wrong.';
    $('task-error-code').textContent = task.error?.code
      ? `${task.error.code}${task.error.retryable ? ' · you can try again' : ''}`
      : '';
  } else if (status === 'CANCELLED') {
    $('task-error').querySelector('h3').textContent = 'Cancelled';
    $('task-error-message').textContent = 'This task was cancelled before it finished.';
    $('task-error-code').textContent = '';
  }

  if (status === 'COMPLETED' && task.result?.strategy) {
    renderStrategy(task.result);
    if (task.result.image) loadImage(taskId, task.result.strategy.strategy_name);
  } else {
    $('strategy').hidden = true;
  }
}

function clampPercent(value) {
  const number = Number(value);
  return Number.isFinite(number) ? Math.min(100, Math.max(0, Math.round(number))) : 0;
}

function humanStage(stage) {
  const text = String(stage).replace(/[_-]+/g, ' ').trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function setStatusBadge(element, status) {
  element.dataset.status = status;
  element.textContent = STATUS_LABELS[status] ?? status;
}

function renderStrategy(result) {
  const strategy = result.strategy;
  $('strategy').hidden = false;
  $('task-heading').textContent = 'Your strategy';
  $('strategy-name').textContent = strategy.strategy_name;
  setOptionalText($('strategy-summary'), strategy.summary);
  $('strategy-budget').textContent = eur.format(Number(strategy.required_budget) || 0);
  $('strategy-timeline').textContent = strategy.timeline_weeks
    ? `${strategy.timeline_weeks} week${strategy.timeline_weeks === 1 ? '' : 's'}`
    : '—';
  $('strategy-audience').textContent = strategy.target_audience;

  const steps = [...(strategy.steps ?? [])].sort((a, b) => a.step_number - b.step_number);
  fillList($('strategy-steps'), steps, (item, step) => {
    item.value = step.step_number;
    item.textContent = step.description;
  });
  $('steps-section').hidden = !steps.length;

  const channels = strategy.channels ?? [];
  fillList($('strategy-channels'), channels, (item, channel) => {
    const share = Math.min(1, Math.max(0, Number(channel.budget_share) || 0));
    const head = element('div', 'channel-head');
    head.append(element('span', 'channel-name', channel.name));
    const amount = eur.format(share * (Number(strategy.required_budget) || 0));
    head.append(element('span', 'channel-share', `${percentFormat.format(share)} · ${amount}`));
    const bar = element('div', 'share-bar');
    bar.setAttribute('aria-hidden', 'true');
    const fill = element('span');
    fill.style.width = `${(share * 100).toFixed(1)}%`;
    bar.append(fill);
    item.append(head, bar);
    if (channel.rationale) item.append(element('p', 'channel-why', channel.rationale));
  });
  $('channels-section').hidden = !channels.length;

  fillList($('strategy-kpis'), strategy.kpis ?? [], (item, kpi) => {
    item.textContent = kpi;
  });
  $('kpis-section').hidden = !(strategy.kpis ?? []).length;

  fillList($('strategy-messages'), strategy.key_messages ?? [], (item, message) => {
    item.textContent = message;
  });
  $('messages-section').hidden = !(strategy.key_messages ?? []).length;

  const sources = result.sources ?? [];
  fillList($('strategy-sources'), sources, (item, source) => {
    // Search sources are Google's expiring redirect links: name them by their site.
    const label = source.kind === 'search' ? source.domain || source.title || 'Google Search result' : source.title || source.url;
    if (isHttpUrl(source.url)) {
      const link = element('a', null, label);
      link.href = source.url;
      link.rel = 'noopener noreferrer nofollow';
      link.target = '_blank';
      item.append(link);
    } else {
      item.textContent = label;
    }
    if (source.status) item.append(element('span', 'muted small', ` (${source.status})`));
  });
  $('sources-section').hidden = !sources.length;
  $('search-links-note').hidden = !sources.some((source) => source.kind === 'search');

  const suggestions = result.search_entry_point;
  $('search-suggestions').hidden = !suggestions;
  if (suggestions) {
    $('search-suggestions-frame').srcdoc = suggestions;
  } else {
    $('search-suggestions-frame').removeAttribute('srcdoc');
  }

  const usage = result.usage?.total_tokens ? ` · ${result.usage.total_tokens.toLocaleString('en')} tokens` : '';
  $('strategy-model').textContent = result.model ? `Made by ${result.model}${usage}` : '';
}

function setOptionalText(node, text) {
  node.textContent = text ?? '';
  node.hidden = !text;
}

function fillList(list, items, fill) {
  list.replaceChildren(
    ...items.map((value) => {
      const item = document.createElement('li');
      fill(item, value);
      return item;
    }),
  );
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function loadImage(taskId, strategyName) {
  if (state.imageTaskId === taskId) return;
  state.imageTaskId = taskId;
  try {
    const response = await authorizedFetch(`${state.config.statusUrl}/v1/tasks/${encodeURIComponent(taskId)}/image`);
    if (!response.ok || state.taskId !== taskId) return;
    const blob = await response.blob();
    if (state.taskId !== taskId) return;
    clearImage();
    state.imageTaskId = taskId;
    state.imageUrl = URL.createObjectURL(blob);
    const image = $('preview-img');
    image.alt = `Preview image for “${strategyName}”`;
    image.src = state.imageUrl;
    $('preview').hidden = false;
  } catch {
    state.imageTaskId = null; // a later snapshot may try again
  }
}

function clearImage() {
  if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
  state.imageUrl = null;
  state.imageTaskId = null;
  $('preview').hidden = true;
  $('preview-img').removeAttribute('src');
}

async function authorizedFetch(url, init = {}) {
  const token = await state.user.getIdToken();
  return fetch(url, { ...init, headers: { ...(init.headers ?? {}), Authorization: `Bearer ${token}` } });
}

async function cancelTask() {
  const taskId = state.taskId;
  if (!taskId) return;
  const button = $('cancel');
  button.disabled = true;
  $('task-action-error').hidden = true;
  try {
    const response = await authorizedFetch(`${state.config.statusUrl}/v1/tasks/${encodeURIComponent(taskId)}`, {
      method: 'DELETE',
    });
    if (!response.ok) {
      const answer = await readJson(response);
      showTaskActionError(answer?.error?.message ?? `Cancel failed (${response.status}).`);
      button.disabled = false;
    }
    // On success the listener shows CANCELLED.
  } catch (error) {
    showTaskActionError(`Could not reach Tinkerbell (${error.message}).`);
    button.disabled = false;
  }
}

function showTaskActionError(message) {
  const element = $('task-action-error');
  element.textContent = message;
  element.hidden = false;
}

// ------------------------------------------------------------------ recent tasks

function followRecent(uid) {
  state.unsubscribeRecent?.();
  const recent = query(
    collection(state.db, 'tasks'),
    where('uid', '==', uid),
    orderBy('created_at', 'desc'),
    limit(RECENT_LIMIT),
  );
  state.unsubscribeRecent = onSnapshot(
    recent,
    (snapshot) => renderRecent(snapshot.docs.map((snap) => ({ id: snap.id, ...snap.data() }))),
    (error) => {
      $('recent-empty').hidden = false;
      $('recent-empty').textContent = `Could not load your strategies: ${error.message}`;
    },
  );
}

function renderRecent(tasks) {
  $('recent-empty').hidden = tasks.length > 0;
  $('recent-empty').textContent = 'None yet.';
  fillList($('recent-list'), tasks, (item, task) => {
    const button = element('button', 'recent-item');
    button.type = 'button';
    button.dataset.taskId = task.id;
    const title = task.result?.strategy?.strategy_name || excerpt(task.request?.brief ?? task.id);
    const top = element('span', 'recent-top');
    top.append(element('span', 'recent-title', title));
    const badge = element('span', 'badge badge-small');
    setStatusBadge(badge, task.status);
    top.append(badge);
    button.append(top);
    const created = task.created_at?.toDate?.();
    if (created) button.append(element('span', 'recent-time muted small', dateFormat.format(created)));
    button.addEventListener('click', () => openTask(task.id));
    item.append(button);
  });
  markCurrentRecent();
}

function markCurrentRecent() {
  for (const button of document.querySelectorAll('.recent-item')) {
    if (button.dataset.taskId === state.taskId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
}

function excerpt(text) {
  const flat = String(text).replace(/\s+/g, ' ').trim();
  return flat.length > 70 ? `${flat.slice(0, 69)}…` : flat;
}

main();
