// One task followed live (a Firestore listener on its document), the strategy
// rendered with its pictures, its export, and the user's recent tasks.

import { collection, doc, limit, onSnapshot, orderBy, query, where } from 'firebase/firestore';

import { appCheckHeaders } from './appcheck.js';
import { budgetFigure, kpiTable, sortedSteps, spreadSteps, timelineSvg, weekRangeText } from './charts.js';
import { $, element, fillList, isHttpUrl, setOptionalText } from './dom.js';
import { formatCost, formatDate, formatEur, formatNumber, formatWeeks, hasMessage, t } from './i18n.js';
import { downloadText, markdownFilename, strategyMarkdown } from './markdown.js';
import { resetShareControls, showShareControls } from './share.js';
import { resetVersions, showVersions } from './versions.js';
import { hideMessage, say, showMessage, state } from './state.js';

const RECENT_LIMIT = 10;
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

export function wireTaskPanel() {
  $('cancel').addEventListener('click', cancelTask);
  $('delete-task').addEventListener('click', deleteTask);
  $('export-markdown').addEventListener('click', exportMarkdown);
  // The print stylesheet (styles.css, @media print) leaves only the strategy.
  $('export-print').addEventListener('click', () => window.print());
}

// ------------------------------------------------------------------ following a task

export function openTask(taskId) {
  state.unsubscribeTask?.();
  state.taskId = taskId;
  state.task = null;
  state.lastStatus = null;
  history.replaceState(null, '', `#task=${encodeURIComponent(taskId)}`);
  resetTaskView(taskId);
  // The recent-tasks listener, open since sign-in, may have seen the task already
  // (even finished): show that at once instead of waiting for this listener's first answer.
  const seen = state.recent?.find((task) => task.id === taskId);
  if (seen) showTask(taskId, seen);
  state.unsubscribeTask = onSnapshot(
    doc(state.db, 'tasks', taskId),
    (snapshot) => {
      if (snapshot.exists()) showTask(taskId, snapshot.data());
    },
    (error) => {
      if (state.taskId !== taskId) return;
      const denied = error.code === 'permission-denied';
      showMessage('task-action-error', denied ? say('task.not_yours') : say('task.live_stopped', { detail: error.message }));
    },
  );
  markCurrentRecent();
}

/** Render a state of the open task unless a later one is on screen already (two
 * listeners deliver it: the task's own and the recent-tasks one). A final state always
 * wins over a running one (their updated_at come from different processes' clocks),
 * and nothing replaces a final state but a later final one. */
function showTask(taskId, task) {
  if (state.taskId !== taskId) return;
  const shownFinal = TERMINAL.has(state.task?.status);
  const givenFinal = TERMINAL.has(task.status);
  const shown = state.task?.updated_at?.toMillis?.() ?? -1;
  const given = task.updated_at?.toMillis?.() ?? 0;
  if (shownFinal && !givenFinal) return;
  if (givenFinal === shownFinal && given < shown) return;
  state.task = task;
  renderTask(taskId, task);
}

function resetTaskView(taskId) {
  const panel = $('task-panel');
  panel.hidden = false;
  panel.dataset.taskId = taskId;
  $('task-status').dataset.status = '';
  $('progress-box').hidden = true;
  $('cancel').hidden = true;
  $('delete-task').hidden = true;
  resetShareControls();
  resetVersions();
  hideMessage('task-action-error');
  $('task-error').hidden = true;
  $('strategy').hidden = true;
  clearImage();
  renderTaskHeader(null);
  if (window.matchMedia('(max-width: 900px)').matches) panel.scrollIntoView({ behavior: 'smooth' });
}

/** Render the open task again, e.g. in a new interface language. */
export function rerenderTask() {
  if (!state.taskId) return;
  if (state.task) renderTask(state.taskId, state.task);
  else renderTaskHeader(null);
}

function renderTaskHeader(task) {
  $('task-id').textContent = t('task.id', { id: state.taskId });
  if (!task) {
    $('task-status').textContent = t('task.sent');
    $('task-heading').textContent = t('task.heading');
  }
}

function renderTask(taskId, task) {
  const status = task.status;
  renderTaskHeader(task);
  setStatusBadge($('task-status'), status);
  if (status !== state.lastStatus) {
    $('live').textContent = t('task.live', { status: statusLabel(status) });
    state.lastStatus = status;
  }
  const finished = TERMINAL.has(status);
  // The cancel button goes away when the task ends: keep the keyboard's place.
  if (finished && document.activeElement === $('cancel')) $('task-heading').focus();
  $('cancel').hidden = finished;
  $('delete-task').hidden = !finished;
  showShareControls(taskId, status === 'COMPLETED');
  showVersions(taskId, status === 'COMPLETED');
  renderProgress(task, finished);
  renderFailure(task);

  const language = task.request?.language;
  if (status === 'COMPLETED' && task.result?.strategy) {
    renderStrategy(task.result, { language, draft: false });
    if (task.result.image) loadImage(taskId, task.result.strategy.strategy_name);
  } else if (!finished && hasDraft(task.draft)) {
    // The strategy as far as Gemini has written it (about once a second).
    renderStrategy({ strategy: task.draft }, { language, draft: true });
  } else {
    $('strategy').hidden = true;
    $('task-heading').textContent = t('task.heading');
  }
}

function hasDraft(draft) {
  return Boolean(draft) && Object.values(draft).some((value) => value !== null && value !== undefined);
}

function renderProgress(task, finished) {
  $('progress-box').hidden = finished;
  if (finished) return;
  const progress = task.progress;
  const stage = progress?.stage ?? (task.status === 'PENDING' ? 'queued' : 'working');
  const percent = clampPercent(progress?.percent ?? 0);
  const percentText = formatNumber(percent / 100, { style: 'percent' });
  $('progress-stage').textContent = stageLabel(stage);
  $('progress-percent').textContent = percentText;
  $('progress-bar').value = percent;
  $('progress-bar').setAttribute('aria-valuetext', percentText);
  $('progress-message').textContent = hasMessage(`stagehint.${stage}`) ? t(`stagehint.${stage}`) : '';
}

function renderFailure(task) {
  const status = task.status;
  $('task-error').hidden = status !== 'FAILED' && status !== 'CANCELLED';
  if (status === 'FAILED') {
    $('task-error-heading').textContent = t('task.failed_heading');
    $('task-error-message').textContent = taskErrorText(task.error);
    const code = task.error?.code;
    $('task-error-code').textContent = code ? `${code}${task.error.retryable ? ` · ${t('task.retryable')}` : ''}` : '';
  } else if (status === 'CANCELLED') {
    $('task-error-heading').textContent = t('task.cancelled_heading');
    $('task-error-message').textContent = t('task.cancelled_text');
    $('task-error-code').textContent = '';
  }
}

/** A task error (docs/spec.md §4 codes) in the interface language, else the server's text. */
export function taskErrorText(error) {
  if (!error) return t('task.unknown_error');
  const detail = error.message || t('task.unknown_error');
  return error.code && hasMessage(`err.${error.code}`) ? t(`err.${error.code}`, { detail }) : detail;
}

function clampPercent(value) {
  const number = Number(value);
  return Number.isFinite(number) ? Math.min(100, Math.max(0, Math.round(number))) : 0;
}

function stageLabel(stage) {
  if (hasMessage(`stage.${stage}`)) return t(`stage.${stage}`);
  const text = String(stage).replace(/[_-]+/g, ' ').trim(); // a stage newer than this app
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function statusLabel(status) {
  return hasMessage(`status.${status}`) ? t(`status.${status}`) : String(status);
}

function setStatusBadge(node, status) {
  node.dataset.status = status;
  node.textContent = statusLabel(status);
}

// ------------------------------------------------------------------ the strategy

export function renderStrategy(result, { language, draft }) {
  const strategy = result.strategy;
  const article = $('strategy');
  article.hidden = false;
  article.dataset.draft = String(draft);
  article.setAttribute('aria-busy', String(draft));
  $('draft-note').hidden = !draft;
  $('export-bar').hidden = draft;
  $('task-heading').textContent = t(draft ? 'task.heading_draft' : 'task.heading_done');

  modelText($('strategy-name'), strategy.strategy_name ?? '', language);
  modelText($('strategy-summary'), strategy.summary, language);
  setOptionalText($('strategy-summary'), strategy.summary);
  const budget = Number(strategy.required_budget);
  $('strategy-budget').textContent = strategy.required_budget != null && Number.isFinite(budget) ? formatEur(budget) : t('facts.none');
  $('strategy-timeline').textContent = strategy.timeline_weeks ? formatWeeks(strategy.timeline_weeks) : t('facts.none');
  modelText($('strategy-audience'), strategy.target_audience || t('facts.none'), strategy.target_audience ? language : null);

  renderChannels(strategy, language);
  renderSteps(strategy, language, draft);
  renderKpis(strategy, language);
  fillList($('strategy-messages'), strategy.key_messages ?? [], (item, message) => modelText(item, message, language));
  $('messages-section').hidden = !(strategy.key_messages ?? []).length;
  renderSources(result.sources ?? []);
  renderSearchSuggestions(result.search_entry_point);
  renderModelLine(result);
  renderImageNote(result);
}

/** Text the model wrote, marked with the strategy's language for screen readers. */
function modelText(node, text, language) {
  node.textContent = text ?? '';
  if (language) node.lang = language;
  else node.removeAttribute('lang');
  return node;
}

function renderChannels(strategy, language) {
  const channels = strategy.channels ?? [];
  $('channels-section').hidden = !channels.length;
  $('strategy-channels').replaceChildren(...(channels.length ? [budgetFigure(strategy, language)] : []));
}

function renderSteps(strategy, language, draft) {
  const steps = sortedSteps(strategy.steps);
  const weeks = Number(strategy.timeline_weeks) || 0;
  const ranges = weeks ? spreadSteps(steps.length, weeks) : [];
  $('steps-section').hidden = !steps.length;
  $('timeline-figure').hidden = !(weeks && steps.length);
  $('timeline-none').hidden = Boolean(weeks) || !steps.length || draft;
  if (weeks && steps.length) {
    $('timeline-chart').replaceChildren(timelineSvg(steps, ranges, weeks));
    $('timeline-caption').textContent = t('timeline.spread', { weeks: formatWeeks(weeks) });
  } else {
    $('timeline-chart').replaceChildren();
  }
  fillList($('strategy-steps'), steps, (item, step, index) => {
    item.value = step.step_number;
    item.dataset.step = step.step_number;
    item.append(modelText(element('span', 'step-text'), step.description, language));
    if (weeks) item.append(element('span', 'step-weeks', weekRangeText(ranges[index], true)));
  });
}

function renderKpis(strategy, language) {
  const kpis = strategy.kpis ?? [];
  $('kpis-section').hidden = !kpis.length;
  $('strategy-kpis').replaceChildren(...(kpis.length ? [kpiTable(kpis, language)] : []));
}

function renderSources(sources) {
  fillList($('strategy-sources'), sources, (item, source) => {
    // Search sources are Google's expiring redirect links: name them by their site.
    const label =
      source.kind === 'search'
        ? source.domain || source.title || t('sources.search_result')
        : source.title || source.url;
    if (isHttpUrl(source.url)) {
      const link = element('a', null, label);
      link.href = source.url;
      link.rel = 'noopener noreferrer nofollow';
      link.target = '_blank';
      item.append(link);
    } else {
      item.textContent = label;
    }
    if (source.status) {
      const status = hasMessage(`source_status.${source.status}`) ? t(`source_status.${source.status}`) : source.status;
      item.append(element('span', 'muted small', ` (${status})`));
    }
  });
  $('sources-section').hidden = !sources.length;
  $('search-links-note').hidden = !sources.some((source) => source.kind === 'search');
}

function renderSearchSuggestions(suggestions) {
  $('search-suggestions').hidden = !suggestions;
  const frame = $('search-suggestions-frame');
  // Set only when it changes: a new srcdoc reloads the frame.
  if (!suggestions) frame.removeAttribute('srcdoc');
  else if (frame.getAttribute('srcdoc') !== suggestions) frame.srcdoc = suggestions;
}

function renderModelLine(result) {
  if (!result.model) {
    $('strategy-model').textContent = '';
    return;
  }
  const total = result.usage?.total_tokens;
  const usage = total ? ` · ${t('strategy.tokens', { count: total })}` : '';
  const cost = result.cost ? ` · ${t('strategy.cost', { amount: formatCost(result.cost) })}` : '';
  $('strategy-model').textContent = `${t('strategy.model', { model: result.model })}${usage}${cost}`;
}

function renderImageNote(result) {
  const problem = !result.image && result.image_error;
  $('image-note').hidden = !problem;
  $('image-note').textContent = problem ? t('strategy.no_image', { detail: taskErrorText(result.image_error) }) : '';
  if (state.imageUrl) $('preview-img').alt = t('strategy.preview_alt', { name: result.strategy.strategy_name ?? '' });
}

function exportMarkdown() {
  const result = state.task?.result;
  if (!result?.strategy) return;
  downloadText(strategyMarkdown(result), markdownFilename(result.strategy));
}

// ------------------------------------------------------------------ the preview image

async function loadImage(taskId, strategyName) {
  if (state.imageTaskId === taskId) return;
  state.imageTaskId = taskId;
  try {
    const response = await authorizedFetch(`${state.config.statusUrl}/v1/tasks/${encodeURIComponent(taskId)}/image`);
    if (!response.ok || state.taskId !== taskId) return;
    const blob = await response.blob();
    if (state.taskId !== taskId) return;
    showImageBlob(blob, strategyName);
    state.imageTaskId = taskId;
  } catch {
    state.imageTaskId = null; // a later snapshot may try again
  }
}

/** Show preview bytes (the owner's, or a shared strategy's). */
export function showImageBlob(blob, strategyName) {
  clearImage();
  state.imageUrl = URL.createObjectURL(blob);
  const image = $('preview-img');
  image.alt = t('strategy.preview_alt', { name: strategyName });
  image.src = state.imageUrl;
  $('preview').hidden = false;
}

function clearImage() {
  if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
  state.imageUrl = null;
  state.imageTaskId = null;
  $('preview').hidden = true;
  $('preview-img').removeAttribute('src');
}

export async function authorizedFetch(url, init = {}) {
  const token = await state.user.getIdToken();
  const headers = { ...(init.headers ?? {}), Authorization: `Bearer ${token}`, ...(await appCheckHeaders()) };
  return fetch(url, { ...init, headers });
}

async function cancelTask() {
  const taskId = state.taskId;
  if (!taskId) return;
  const button = $('cancel');
  if (button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true'); // not disabled: that would drop the focus
  hideMessage('task-action-error');
  try {
    // cancel_only: a task that finished meanwhile stays (409), it is not erased.
    const url = `${state.config.statusUrl}/v1/tasks/${encodeURIComponent(taskId)}?cancel_only=true`;
    const response = await authorizedFetch(url, { method: 'DELETE' });
    if (!response.ok) {
      const detail = await apiErrorText(response);
      showMessage('task-action-error', () => t('cancel.failed', { detail }));
    }
    // On success the listener shows CANCELLED.
  } catch (error) {
    showMessage('task-action-error', say('net.unreachable', { detail: error.message }));
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

/** The API's error as one line in the interface language (its code's message if known). */
export async function apiErrorText(response) {
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    // not JSON: the status says enough
  }
  const error = answer?.error;
  const message = error?.message ?? t('net.status', { status: response.status });
  return error?.code && hasMessage(`err.${error.code}`) ? t(`err.${error.code}`, { detail: message }) : message;
}

/** Delete a finished task for good (asked first): the document, its PDF and preview. */
async function deleteTask() {
  const taskId = state.taskId;
  const button = $('delete-task');
  if (!taskId || button.getAttribute('aria-disabled') === 'true') return;
  if (!window.confirm(t('delete.confirm'))) return;
  button.setAttribute('aria-disabled', 'true');
  hideMessage('task-action-error');
  try {
    const url = `${state.config.statusUrl}/v1/tasks/${encodeURIComponent(taskId)}`;
    const response = await authorizedFetch(url, { method: 'DELETE' });
    if (response.status === 204 || response.status === 404) {
      closeTask();
      $('live').textContent = t('delete.done');
      return;
    }
    const detail = await apiErrorText(response);
    showMessage('task-action-error', () => t('delete.failed', { detail }));
  } catch (error) {
    showMessage('task-action-error', say('net.unreachable', { detail: error.message }));
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

/** Stop following the open task and hide its panel (deleted, or its user erased). */
export function closeTask() {
  state.unsubscribeTask?.();
  state.unsubscribeTask = null;
  state.taskId = null;
  state.task = null;
  history.replaceState(null, '', location.pathname + location.search);
  $('task-panel').hidden = true;
  resetShareControls();
  resetVersions();
  clearImage();
  markCurrentRecent();
  $('brief').focus();
}

// ------------------------------------------------------------------ recent tasks

export function followRecent(uid) {
  state.unsubscribeRecent?.();
  const recent = query(
    collection(state.db, 'tasks'),
    where('uid', '==', uid),
    orderBy('created_at', 'desc'),
    limit(RECENT_LIMIT),
  );
  state.unsubscribeRecent = onSnapshot(
    recent,
    (snapshot) => {
      state.recent = snapshot.docs.map((snap) => ({ id: snap.id, ...snap.data() }));
      renderRecent();
      const open = state.recent.find((task) => task.id === state.taskId);
      if (open) showTask(open.id, open);
    },
    (error) => showMessage('recent-empty', say('recent.failed', { detail: error.message })),
  );
}

export function renderRecent() {
  const tasks = state.recent ?? [];
  // The list is rebuilt on every change (a running task changes each second):
  // keep the keyboard's place in it.
  const focused = document.activeElement?.closest?.('.recent-item')?.dataset.taskId;
  if (tasks.length) hideMessage('recent-empty');
  else showMessage('recent-empty', say('recent.empty'));
  fillList($('recent-list'), tasks, (item, task) => {
    const button = element('button', 'recent-item');
    button.type = 'button';
    button.dataset.taskId = task.id;
    const name = task.result?.strategy?.strategy_name;
    const top = element('span', 'recent-top');
    const title = element('span', 'recent-title', name || excerpt(task.request?.brief ?? task.id));
    if (name && task.request?.language) title.lang = task.request.language; // the strategy's language
    top.append(title);
    const badge = element('span', 'badge badge-small');
    setStatusBadge(badge, task.status);
    top.append(badge);
    button.append(top);
    const created = task.created_at?.toDate?.();
    if (created) button.append(element('span', 'recent-time muted small', formatDate(created)));
    button.addEventListener('click', () => openTask(task.id));
    item.append(button);
  });
  markCurrentRecent();
  if (focused) document.querySelector(`.recent-item[data-task-id="${CSS.escape(focused)}"]`)?.focus();
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
