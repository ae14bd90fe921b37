// The brief form: reading and checking it, the PDF drop zone, and submitting,
// with a large PDF going through an upload session first.

import { appCheckHeaders } from './appcheck.js';
import { $, isHttpUrl } from './dom.js';
import { formatBytes, formatDate, formatNumber, hasMessage, t } from './i18n.js';
import { hideMessage, say, showMessage, state } from './state.js';
import { openTask } from './task.js';
import {
  MAX_UPLOAD_PDF_BYTES,
  REQUEST_PDF_LIMIT_BYTES,
  UploadError,
  openSession,
  putFile,
  sessionStillValid,
  uploadThreshold,
} from './upload.js';

const MAX_BRIEF_CHARS = 20000;
const MAX_URLS = 20;
const FIELDS = ['brief', 'urls', 'pdf', 'language', 'image', 'grounding'];
// Server fields shown next to another control.
const FIELD_ALIASES = { upload_id: 'pdf', size_bytes: 'pdf', filename: 'pdf' };
const BCP47 = /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/;

export function wireForm() {
  $('brief').addEventListener('input', renderCounter);
  $('language').addEventListener('change', () => {
    state.languageTouched = true;
    const other = $('language').value === 'other';
    $('language-other-field').hidden = !other;
    if (other) $('language-other').focus();
  });
  for (const name of FIELDS) {
    $(name).addEventListener(name === 'pdf' ? 'change' : 'input', () => clearFieldError(name));
  }
  $('language-other').addEventListener('input', () => clearFieldError('language'));
  $('pdf').addEventListener('change', pdfChosen);
  $('pdf-remove').addEventListener('click', () => {
    $('pdf').value = '';
    pdfChosen();
    $('pdf').focus();
  });
  $('brief-form').addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
  wireDropZone();
}

/** The form's texts that carry numbers (the rest is plain data-i18n). */
export function renderFormTexts() {
  renderCounter();
  $('brief-help').textContent = t('brief.help', { max: MAX_BRIEF_CHARS });
  $('urls-help').textContent = t('urls.help', { max: MAX_URLS });
  $('pdf-help').textContent = t('pdf.help', {
    max: formatBytes(MAX_UPLOAD_PDF_BYTES),
    limit: formatBytes(REQUEST_PDF_LIMIT_BYTES),
  });
  renderChosen();
  renderSubmitButton();
}

/** The strategy language follows the interface language until the user picks one. */
export function defaultStrategyLanguage(language) {
  if (state.languageTouched) return;
  $('language').value = language;
  $('language-other-field').hidden = true;
}

function renderCounter() {
  const length = $('brief').value.length;
  const counter = $('brief-counter');
  counter.textContent = t('brief.counter', { count: length, max: MAX_BRIEF_CHARS });
  counter.classList.toggle('near-limit', length > MAX_BRIEF_CHARS * 0.9);
}

function renderSubmitButton() {
  const key = { uploading: 'submit.uploading', sending: 'submit.sending' }[state.busy] ?? 'submit.idle';
  $('submit').textContent = t(key);
}

function setBusy(busy) {
  state.busy = busy;
  // aria-disabled rather than disabled: a disabled button drops the keyboard focus.
  // submit() ignores presses while busy.
  $('submit').setAttribute('aria-disabled', String(Boolean(busy)));
  renderSubmitButton();
}

// ------------------------------------------------------------------ the PDF

function pdfChosen() {
  renderChosen();
  const problem = checkPdf($('pdf').files[0]);
  if (problem) showFieldError('pdf', problem);
}

function renderChosen() {
  const file = $('pdf').files[0];
  $('pdf-chosen-row').hidden = !file;
  $('pdf-chosen').textContent = file ? t('pdf.chosen', { name: file.name, size: formatBytes(file.size) }) : '';
}

function isPdf(file) {
  return file.type === 'application/pdf' || /\.pdf$/i.test(file.name);
}

function checkPdf(file) {
  if (!file) return null;
  if (!isPdf(file)) return say('val.pdf_type');
  if (file.size > MAX_UPLOAD_PDF_BYTES) {
    return say('val.pdf_big', { size: formatBytes(file.size), max: formatBytes(MAX_UPLOAD_PDF_BYTES) });
  }
  if (file.size === 0) return say('val.pdf_empty');
  return null;
}

function hasFiles(event) {
  return Array.from(event.dataTransfer?.types ?? []).includes('Files');
}

/**
 * Files dropped anywhere on the form land in the PDF field; the drop zone lights
 * up while they are dragged over it. Text dragged into a textarea is left alone.
 */
function wireDropZone() {
  const form = $('brief-form');
  const zone = $('pdf-drop');
  let depth = 0; // dragenter/dragleave fire for every child crossed
  form.addEventListener('dragenter', (event) => {
    if (!hasFiles(event)) return;
    depth += 1;
    zone.classList.add('dragging');
  });
  form.addEventListener('dragleave', (event) => {
    if (!hasFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove('dragging');
  });
  form.addEventListener('dragover', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  form.addEventListener('drop', (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.stopPropagation();
    depth = 0;
    zone.classList.remove('dragging');
    takeDroppedFiles(event.dataTransfer.files);
  });
  // A click anywhere in the zone opens the file chooser, as its button shows.
  zone.addEventListener('click', (event) => {
    if (event.target === $('pdf') || event.target.closest('button')) return; // input.click() bubbles here too
    $('pdf').click();
  });
  // A file dropped beside the form would make the browser leave the app to show it.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (event) => {
      if (hasFiles(event)) event.preventDefault();
    });
  }
}

function takeDroppedFiles(files) {
  const file = Array.from(files).find(isPdf);
  clearFieldError('pdf');
  if (!file) {
    showFieldError('pdf', say('val.pdf_type'));
    return;
  }
  const chosen = new DataTransfer();
  chosen.items.add(file);
  $('pdf').files = chosen.files;
  pdfChosen();
}

function showUploadProgress(fraction) {
  const percent = Math.round(fraction * 100);
  const text = t('pdf.uploading', { percent: formatNumber(fraction, { style: 'percent', maximumFractionDigits: 0 }) });
  $('upload-box').hidden = false;
  $('upload-label').textContent = text;
  $('upload-bar').value = percent;
  $('upload-bar').setAttribute('aria-valuetext', text);
}

// ------------------------------------------------------------------ reading and checking

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
  if (!brief) problems.push(['brief', say('val.brief_empty')]);
  else if (brief.length > MAX_BRIEF_CHARS) {
    problems.push(['brief', say('val.brief_long', { count: brief.length, max: MAX_BRIEF_CHARS })]);
  }
  if (input.urls.length > MAX_URLS) problems.push(['urls', say('val.urls_many', { max: MAX_URLS })]);
  const badUrl = input.urls.findIndex((url) => !isHttpUrl(url));
  if (badUrl >= 0) problems.push(['urls', say('val.url_bad', { line: badUrl + 1 })]);
  if (!BCP47.test(input.language)) problems.push(['language', say('val.language')]);
  const pdfProblem = checkPdf(input.pdf);
  if (pdfProblem) problems.push(['pdf', pdfProblem]);
  return problems;
}

// ------------------------------------------------------------------ submitting

async function submit() {
  clearErrors();
  if (!state.user || state.busy) return;
  const input = readForm();
  const problems = checkForm(input);
  if (problems.length) {
    for (const [field, message] of problems) showFieldError(field, message);
    focusField(problems[0][0]);
    return;
  }
  try {
    let request;
    if (input.pdf && input.pdf.size > uploadThreshold(state.config)) {
      setBusy('uploading');
      const session = await uploadPdf(input.pdf);
      request = jsonRequest(input, session.upload_id);
    } else {
      request = encodeRequest(input);
    }
    setBusy('sending');
    await send(request);
  } catch (error) {
    if (error instanceof UploadError) uploadFailed(error);
    // A network failure: a retry of the same request reuses the idempotency key.
    else showMessage('form-error', say('net.unreachable', { detail: error.message }));
  } finally {
    $('upload-box').hidden = true;
    setBusy(null);
  }
}

async function send({ body, contentType, fingerprint }) {
  if (state.idempotency?.fingerprint !== fingerprint) {
    state.idempotency = { fingerprint, key: crypto.randomUUID() };
  }
  const headers = {
    Authorization: `Bearer ${await state.user.getIdToken()}`,
    'Idempotency-Key': state.idempotency.key,
    ...(await appCheckHeaders({ limitedUse: true })), // spent by this request: one per send
  };
  if (contentType) headers['Content-Type'] = contentType;
  const response = await fetch(`${state.config.submitUrl}/v1/strategies`, { method: 'POST', headers, body });
  const answer = await readJson(response);
  state.idempotency = null; // answered: accepted, or refused with nothing to deduplicate
  if (!response.ok) {
    // A refused upload is deleted with its session (docs/spec.md §2.4): upload anew.
    state.upload = null;
    showApiError(answer, response.status, Number(response.headers.get('Retry-After')) || 0);
    return;
  }
  openTask(answer.task_id);
}

function requestFields(input) {
  const fields = {
    brief: input.brief,
    urls: input.urls,
    language: input.language,
    image: input.image,
    grounding: input.grounding,
  };
  if (!input.urls.length) delete fields.urls;
  return fields;
}

function jsonRequest(input, uploadId) {
  const fields = { ...requestFields(input), upload_id: uploadId };
  return { body: JSON.stringify(fields), contentType: 'application/json', fingerprint: JSON.stringify(fields) };
}

function encodeRequest(input) {
  const fields = requestFields(input);
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

/** Open a session and PUT the PDF, unless this very file is already uploaded. */
async function uploadPdf(file) {
  const key = JSON.stringify([file.name, file.size, file.lastModified]);
  if (state.upload?.key === key && sessionStillValid(state.upload.session)) return state.upload.session;
  state.upload = null;
  showUploadProgress(0);
  const session = await openSession(state.config.submitUrl, await state.user.getIdToken(), file);
  await putFile(session.upload_url, file, showUploadProgress);
  state.upload = { key, session };
  return session;
}

function uploadFailed(error) {
  if (error.answer?.error) {
    showApiError(error.answer, error.status, error.retryAfter);
    return;
  }
  showFieldError('pdf', say('upload.failed', { detail: error.message }));
  focusField('pdf');
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** The API's error as a text in the interface language (docs/spec.md §2.1 codes). */
export function apiErrorMessage(error, status, retryAfter) {
  return () => {
    const detail = error?.message || t('net.status', { status });
    const code = error?.code;
    if (code === 'rate_limited') {
      return retryAfter ? t('err.rate_limited', { seconds: retryAfter }) : t('err.rate_limited_soon');
    }
    if (code === 'budget_exhausted' && error.resets_at) {
      return t('err.budget_exhausted', { time: formatDate(new Date(error.resets_at)) });
    }
    return code && hasMessage(`err.${code}`) ? t(`err.${code}`, { detail }) : detail;
  };
}

function showApiError(answer, status, retryAfter) {
  const error = answer?.error;
  const message = apiErrorMessage(error, status, retryAfter);
  const field = FIELD_ALIASES[error?.field] ?? error?.field;
  if (status === 413 && !FIELDS.includes(field)) {
    showFieldError('pdf', message);
    focusField('pdf');
  } else if (FIELDS.includes(field)) {
    showFieldError(field, message);
    focusField(field);
  } else {
    showMessage('form-error', message);
  }
}

// ------------------------------------------------------------------ field errors

function controlOf(field) {
  return field === 'language' && $('language').value === 'other' ? $('language-other') : $(field);
}

function showFieldError(field, message) {
  showMessage(`${field}-error`, message);
  const control = controlOf(field);
  control.setAttribute('aria-invalid', 'true');
  control.closest('.field')?.classList.add('has-error');
}

function clearFieldError(field) {
  hideMessage(`${field}-error`);
  for (const control of [$(field), field === 'language' ? $('language-other') : null]) {
    if (!control) continue;
    control.removeAttribute('aria-invalid');
    control.closest('.field')?.classList.remove('has-error');
  }
}

function focusField(field) {
  controlOf(field).focus();
}

function clearErrors() {
  for (const field of FIELDS) clearFieldError(field);
  hideMessage('form-error');
}
