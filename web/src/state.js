// The app's shared state, and the texts on screen that must follow a language switch.

import { $ } from './dom.js';
import { t } from './i18n.js';

export const state = {
  config: null,
  auth: null,
  db: null,
  user: null,
  taskId: null,
  task: null, // the last snapshot of the open task, re-rendered on a language switch
  recent: null, // the last recent-task list, likewise
  unsubscribeTask: null,
  unsubscribeRecent: null,
  lastStatus: null,
  imageTaskId: null,
  imageUrl: null,
  idempotency: null, // {fingerprint, key}: a retry of the same request reuses its key
  upload: null, // {key, session}: a PDF already uploaded, reused by a retry
  busy: null, // null, 'uploading' or 'sending'
  languageTouched: false, // the user picked the strategy language themselves
  shareTaskId: null, // the task whose share controls are shown
  share: null, // its newest live read-only link
  versionsTaskId: null, // the task whose versions are shown
  versions: [], // its strategy's versions, oldest first
};

/** A message that is rendered again in the new language: () => text. */
export const say = (key, params) => () => t(key, params);

// id -> () => text, for every message element now on screen.
const shown = new Map();

/** Show a message in an element; `message` is a text thunk (see `say`). */
export function showMessage(id, message) {
  const node = $(id);
  shown.set(id, message);
  node.textContent = message();
  node.hidden = false;
}

export function hideMessage(id) {
  shown.delete(id);
  const node = $(id);
  node.textContent = '';
  node.hidden = true;
}

/** A message element whose text follows the language but is never hidden. */
export function setText(id, message) {
  shown.set(id, message);
  $(id).textContent = message();
}

export function refreshMessages() {
  for (const [id, message] of shown) $(id).textContent = message();
}
