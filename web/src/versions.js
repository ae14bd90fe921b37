// Versions of a strategy (issue 19): the "Revise" box under a finished strategy, the list
// of its versions, and a side-by-side comparison of any two of them.

import { appCheckHeaders } from './appcheck.js';
import { renderComparison } from './compare.js';
import { $, element, fillList } from './dom.js';
import { t } from './i18n.js';
import { hideMessage, say, showMessage, state } from './state.js';
import { apiErrorText, authorizedFetch, openTask } from './task.js';

export function wireVersions() {
  $('revise-form').addEventListener('submit', (event) => {
    event.preventDefault();
    revise();
  });
  $('compare-button').addEventListener('click', compare);
}

function taskUrl(taskId) {
  return `${state.config.statusUrl}/v1/tasks/${encodeURIComponent(taskId)}`;
}

/** The versions box of the open task: shown (and its list fetched) once it is COMPLETED. */
export async function showVersions(taskId, completed) {
  const box = $('versions-box');
  box.hidden = !completed || !state.user;
  if (!completed || state.versionsTaskId === taskId) return;
  state.versionsTaskId = taskId;
  state.versions = [];
  renderVersions();
  try {
    const response = await authorizedFetch(`${taskUrl(taskId)}/versions`);
    if (!response.ok || state.taskId !== taskId) return;
    state.versions = (await response.json()).versions;
    renderVersions();
  } catch {
    // the Revise box still works
  }
}

export function resetVersions() {
  state.versionsTaskId = null;
  state.versions = [];
  $('versions-box').hidden = true;
  $('compare-view').hidden = true;
  hideMessage('revise-error');
}

function label(version) {
  const what = version.instruction ? ` · ${version.instruction}` : '';
  return `${t('compare.version', { n: version.version })} · ${version.strategy_name ?? version.status}${what}`;
}

function renderVersions() {
  const versions = state.versions ?? [];
  fillList($('versions-list'), versions, (item, version) => {
    const button = element('button', 'version-item', label(version));
    button.type = 'button';
    button.dataset.taskId = version.task_id;
    if (version.task_id === state.taskId) button.setAttribute('aria-current', 'true');
    button.addEventListener('click', () => openTask(version.task_id));
    item.append(button);
  });
  const finished = versions.filter((version) => version.status === 'COMPLETED');
  for (const [id, pick] of [['compare-a', finished.length - 2], ['compare-b', finished.length - 1]]) {
    const select = $(id);
    select.replaceChildren(...finished.map((version) => {
      const option = element('option', '', label(version));
      option.value = version.task_id;
      return option;
    }));
    if (pick >= 0) select.selectedIndex = pick;
  }
  $('compare-row').hidden = finished.length < 2;
}

async function revise() {
  const parentId = state.taskId;
  const instruction = $('revise-instruction').value.trim();
  const button = $('revise-submit');
  if (!parentId || button.getAttribute('aria-disabled') === 'true') return;
  if (!instruction) {
    showMessage('revise-error', say('revise.empty'));
    $('revise-instruction').focus();
    return;
  }
  hideMessage('revise-error');
  button.setAttribute('aria-disabled', 'true');
  try {
    const token = await state.user.getIdToken();
    const response = await fetch(`${state.config.submitUrl}/v1/tasks/${encodeURIComponent(parentId)}/revisions`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/json',
        'Idempotency-Key': crypto.randomUUID(),
        ...(await appCheckHeaders({ limitedUse: true })),
      },
      body: JSON.stringify({ instruction, image: $('image').checked }),
    });
    if (response.status !== 202 && response.status !== 200) {
      const detail = await apiErrorText(response);
      showMessage('revise-error', () => t('revise.failed', { detail }));
      return;
    }
    $('revise-instruction').value = '';
    openTask((await response.json()).task_id); // follow the new version live
  } catch (error) {
    showMessage('revise-error', say('net.unreachable', { detail: error.message }));
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

async function loadVersion(taskId) {
  const response = await authorizedFetch(taskUrl(taskId));
  if (!response.ok) throw new Error(await apiErrorText(response));
  const task = await response.json();
  return { version: task.version, strategy: task.result.strategy, language: task.request.language };
}

async function compare() {
  const a = $('compare-a').value;
  const b = $('compare-b').value;
  if (!a || !b) return;
  hideMessage('revise-error');
  try {
    const [first, second] = await Promise.all([loadVersion(a), loadVersion(b)]);
    renderComparison(first, second);
  } catch (error) {
    showMessage('revise-error', () => t('compare.failed', { detail: error.message }));
  }
}
