// Read-only links (issue 19): the owner's Share button (copy the link, revoke it) under a
// finished strategy, and the page a link opens (/s/{share_id}), which needs no sign-in.

import { appCheckHeaders } from './appcheck.js';
import { $ } from './dom.js';
import { formatDate, t } from './i18n.js';
import { hideMessage, say, showMessage, state } from './state.js';
import { apiErrorText, authorizedFetch, renderStrategy, showImageBlob } from './task.js';

const SHARE_PATH = /^\/s\/([A-Za-z0-9_-]{1,128})\/?$/;

/** The share id when this page is a shared strategy's (/s/{id}), else null. */
export function sharedId() {
  return SHARE_PATH.exec(location.pathname)?.[1] ?? null;
}

export function wireSharing() {
  $('share-create').addEventListener('click', createShare);
  $('share-copy').addEventListener('click', copyLink);
  $('share-revoke').addEventListener('click', revokeShare);
}

function sharesUrl(taskId) {
  return `${state.config.statusUrl}/v1/tasks/${encodeURIComponent(taskId)}/shares`;
}

/** The open task's Share controls: shown for a COMPLETED task, with its newest live link. */
export async function showShareControls(taskId, completed) {
  $('share-box').hidden = !completed || !state.user;
  if (!completed || state.shareTaskId === taskId) return;
  state.shareTaskId = taskId;
  state.share = null;
  renderShare();
  try {
    const response = await authorizedFetch(sharesUrl(taskId));
    if (!response.ok || state.taskId !== taskId) return;
    const { shares } = await response.json();
    state.share = shares[0] ?? null;
    renderShare();
  } catch {
    // the Share button still makes a new link
  }
}

/** Forget the share controls' task (another task opens, or this one is gone). */
export function resetShareControls() {
  state.shareTaskId = null;
  state.share = null;
  $('share-box').hidden = true;
  renderShare();
}

function renderShare() {
  const share = state.share;
  $('share-link-row').hidden = !share;
  $('share-link').value = share?.url ?? '';
  if (share) {
    const until = formatDate(new Date(share.expires_at));
    showMessage('share-note', () => t('share.until', { date: until }));
  } else {
    hideMessage('share-note');
  }
}

async function createShare() {
  const taskId = state.taskId;
  const button = $('share-create');
  if (!taskId || button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true');
  try {
    const response = await authorizedFetch(sharesUrl(taskId), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    if (response.status !== 201) {
      const detail = await apiErrorText(response);
      showMessage('share-note', () => t('share.failed', { detail }));
      return;
    }
    state.share = await response.json();
    renderShare();
    $('share-link').select();
  } catch (error) {
    showMessage('share-note', say('net.unreachable', { detail: error.message }));
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

async function copyLink() {
  const link = $('share-link').value;
  if (!link) return;
  try {
    await navigator.clipboard.writeText(link);
    showMessage('share-note', say('share.copied'));
  } catch {
    $('share-link').select(); // the browser refused: the link is selected to copy by hand
    showMessage('share-note', say('share.copy_failed'));
  }
}

async function revokeShare() {
  const share = state.share;
  if (!share) return;
  try {
    const url = `${state.config.statusUrl}/v1/shares/${encodeURIComponent(share.share_id)}`;
    const response = await authorizedFetch(url, { method: 'DELETE' });
    if (response.status !== 204 && response.status !== 404) {
      const detail = await apiErrorText(response);
      showMessage('share-note', () => t('share.failed', { detail }));
      return;
    }
    state.share = null;
    renderShare();
    showMessage('share-note', say('share.revoked'));
    $('share-create').focus();
  } catch (error) {
    showMessage('share-note', say('net.unreachable', { detail: error.message }));
  }
}

// ------------------------------------------------------------------ the shared page

/** /s/{id}: the strategy a link shows, read-only, without signing in. */
export async function openSharedView(shareId) {
  document.body.dataset.mode = 'shared';
  $('task-panel').hidden = false;
  $('task-id').textContent = '';
  $('task-status').hidden = true;
  $('task-heading').textContent = t('shared.heading');
  try {
    const url = `${state.config.statusUrl}/v1/shared/${encodeURIComponent(shareId)}`;
    const response = await fetch(url, { headers: await appCheckHeaders() });
    if (!response.ok) {
      const key = response.status === 404 ? 'shared.gone' : 'shared.failed';
      const detail = await apiErrorText(response);
      showMessage('shared-note', () => t(key, { detail }));
      return;
    }
    const view = await response.json();
    const result = { strategy: view.strategy, sources: view.sources };
    state.task = { status: 'COMPLETED', request: { language: view.language }, result };
    renderStrategy(result, { language: view.language, draft: false });
    $('task-heading').textContent = t('shared.heading');
    const until = formatDate(new Date(view.expires_at));
    showMessage('shared-note', () => t('shared.note', { date: until }));
    if (view.image_url) {
      const image = await fetch(`${state.config.statusUrl}${view.image_url}`, { headers: await appCheckHeaders() });
      if (image.ok) showImageBlob(await image.blob(), view.strategy.strategy_name ?? '');
    }
  } catch (error) {
    showMessage('shared-note', say('net.unreachable', { detail: error.message }));
  }
}
