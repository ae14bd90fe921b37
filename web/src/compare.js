// Two versions of a strategy side by side: the budget per channel, the steps, the KPIs
// and the key messages, each row marked added, removed, changed or the same. The same
// rules as the CLI's `tinkerbell diff` (cli/diff.py).

import { $, element } from './dom.js';
import { formatEur, t } from './i18n.js';

function channelBudgets(strategy) {
  const total = Number(strategy.required_budget ?? 0);
  const budgets = new Map();
  for (const channel of strategy.channels ?? []) {
    budgets.set(String(channel.name ?? ''), Math.round(total * Number(channel.budget_share ?? 0) * 100) / 100);
  }
  return budgets;
}

function change(before, after) {
  if (before === undefined) return 'added';
  if (after === undefined) return 'removed';
  return before === after ? 'same' : 'changed';
}

/** Rows position by position (steps are ordered). */
function pairs(before, after) {
  const rows = [];
  for (let index = 0; index < Math.max(before.length, after.length); index += 1) {
    rows.push({ change: change(before[index], after[index]), before: before[index], after: after[index] });
  }
  return rows;
}

/** Rows as sets, in order of appearance (KPIs and messages are not ordered). */
function sets(before, after) {
  return [
    ...before.map((item) => ({ change: after.includes(item) ? 'same' : 'removed', before: item, after: after.includes(item) ? item : undefined })),
    ...after.filter((item) => !before.includes(item)).map((item) => ({ change: 'added', before: undefined, after: item })),
  ];
}

export function strategyDiff(before, after) {
  const oldBudgets = channelBudgets(before);
  const newBudgets = channelBudgets(after);
  const names = [...oldBudgets.keys(), ...[...newBudgets.keys()].filter((name) => !oldBudgets.has(name))];
  return {
    budget: { change: change(before.required_budget, after.required_budget), before: before.required_budget, after: after.required_budget },
    channels: names.map((name) => ({ label: name, change: change(oldBudgets.get(name), newBudgets.get(name)), before: oldBudgets.get(name), after: newBudgets.get(name) })),
    steps: pairs((before.steps ?? []).map((s) => String(s.description ?? '')), (after.steps ?? []).map((s) => String(s.description ?? ''))),
    kpis: sets(before.kpis ?? [], after.kpis ?? []),
    key_messages: sets(before.key_messages ?? [], after.key_messages ?? []),
  };
}

function eur(value) {
  return value === undefined || value === null ? '—' : formatEur(Number(value));
}

function row(table, label, entry, format, language) {
  const tr = element('tr', `change-${entry.change}`);
  tr.dataset.change = entry.change;
  const head = element('th', '', label);
  head.scope = 'row';
  const a = element('td', '', entry.before === undefined ? '—' : format(entry.before));
  const b = element('td', '', entry.after === undefined ? '—' : format(entry.after));
  if (language && format === String) {
    a.lang = language;
    b.lang = language;
  }
  const mark = element('td', 'change-mark', t(`compare.${entry.change}`));
  tr.append(head, a, b, mark);
  table.append(tr);
}

/** Render the comparison of version A and version B into #compare-view. */
export function renderComparison(a, b) {
  const diff = strategyDiff(a.strategy, b.strategy);
  const view = $('compare-view');
  view.replaceChildren();
  const table = element('table', 'compare-table');
  const caption = element('caption', '', t('compare.caption', { a: a.version, b: b.version }));
  table.append(caption);
  const head = element('tr');
  for (const text of ['', t('compare.version', { n: a.version }), t('compare.version', { n: b.version }), '']) {
    const th = element('th', '', text);
    th.scope = 'col';
    head.append(th);
  }
  table.append(head);
  row(table, t('facts.budget'), diff.budget, eur);
  for (const entry of diff.channels) row(table, entry.label, entry, eur);
  diff.steps.forEach((entry, index) => row(table, t('compare.step', { n: index + 1 }), entry, String, b.language));
  for (const entry of diff.kpis) row(table, t('section.kpis'), entry, String, b.language);
  for (const entry of diff.key_messages) row(table, t('section.messages'), entry, String, b.language);
  view.append(table);
  view.hidden = false;
  return diff;
}
