// The strategy as pictures, drawn as SVG in the page (no chart service): the
// budget split by channel as a stacked bar with a legend table, and the steps on
// a timeline over the strategy's weeks. Each picture is role="img" with a label
// that says the same numbers, and the numbers are also in plain HTML beside it.

import { cell, element, svgElement } from './dom.js';
import { formatEur, formatPercent, formatWeeks, t } from './i18n.js';

// Distinct hues, dark enough to stand out from the white panel.
const PALETTE = ['#5b3fd1', '#0f7b6c', '#c2410c', '#2563eb', '#b8326f', '#6b7a1f', '#7e22ce', '#0e7490'];
const UNALLOCATED = '#e4e1ee';

function share01(value) {
  const number = Number(value);
  return Number.isFinite(number) ? Math.min(1, Math.max(0, number)) : 0;
}

function money(value) {
  const number = Number(value);
  return Number.isFinite(number) && number > 0 ? number : 0;
}

/** One row per channel: its share (0..1) and its EUR amount = share × required_budget. */
export function channelRows(strategy) {
  const budget = money(strategy.required_budget);
  return (strategy.channels ?? []).map((channel, index) => {
    const share = share01(channel.budget_share);
    return {
      name: String(channel.name ?? ''),
      rationale: channel.rationale ? String(channel.rationale) : '',
      share,
      amount: share * budget,
      color: PALETTE[index % PALETTE.length],
    };
  });
}

// ---------------------------------------------------------------- budget

/** The budget figure: a stacked bar (SVG) and a legend table with the same numbers. */
export function budgetFigure(strategy, contentLang) {
  const rows = channelRows(strategy);
  const figure = element('figure', 'budget-figure');
  figure.append(budgetBar(rows), legendTable(rows, contentLang));
  const total = rows.reduce((sum, row) => sum + row.share, 0);
  const caption = element('figcaption', 'muted small');
  caption.textContent = t('chart.caption', { budget: formatEur(money(strategy.required_budget)) });
  // Models do not always add up to 100 %: say so rather than draw a wrong bar.
  if (total > 1.0005) caption.textContent += ` ${t('chart.over', { total: formatPercent(total) })}`;
  figure.append(caption);
  return figure;
}

function budgetBar(rows) {
  const width = 1000;
  const height = 40;
  const total = rows.reduce((sum, row) => sum + row.share, 0);
  const scale = total > 1 ? 1 / total : 1;
  const items = rows.map((row) => t('chart.item', describe(row))).join('; ');
  const label = t('chart.label', { items });
  const svg = svgElement('svg', {
    class: 'budget-bar',
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': label,
  });
  svg.append(svgElement('title', {}, label));
  let x = 0;
  rows.forEach((row, index) => {
    const w = row.share * scale * width;
    const rect = svgElement('rect', {
      class: 'budget-segment',
      x: x.toFixed(2),
      y: 0,
      width: w.toFixed(2),
      height,
      fill: row.color,
      'data-channel': index,
      'data-share': row.share,
    });
    rect.append(svgElement('title', {}, t('chart.item', describe(row))));
    svg.append(rect);
    x += w;
  });
  if (x < width - 0.5) {
    svg.append(svgElement('rect', { x: x.toFixed(2), y: 0, width: (width - x).toFixed(2), height, fill: UNALLOCATED }));
  }
  return svg;
}

function describe(row) {
  return { name: row.name, share: formatPercent(row.share), amount: formatEur(row.amount) };
}

function legendTable(rows, contentLang) {
  const table = element('table', 'legend');
  table.append(element('caption', 'visually-hidden', t('section.channels')));
  const head = element('thead');
  const headRow = element('tr');
  headRow.append(
    cell(t('chart.channel'), { header: true, scope: 'col' }),
    cell(t('chart.share'), { header: true, scope: 'col', className: 'num' }),
    cell(t('chart.amount'), { header: true, scope: 'col', className: 'num' }),
  );
  head.append(headRow);
  const body = element('tbody');
  for (const row of rows) body.append(legendRow(row, contentLang));
  const unallocated = 1 - rows.reduce((sum, row) => sum + row.share, 0);
  if (rows.length && unallocated > 0.0005) body.append(unallocatedRow(unallocated));
  table.append(head, body);
  return table;
}

function legendRow(row, contentLang) {
  const tr = element('tr', 'legend-row');
  tr.dataset.share = String(row.share);
  tr.dataset.amount = String(row.amount);
  const name = cell(null, { header: true, scope: 'row' });
  const swatch = element('span', 'swatch');
  swatch.style.background = row.color;
  swatch.setAttribute('aria-hidden', 'true');
  const text = element('span', 'legend-name', row.name);
  if (contentLang) text.lang = contentLang;
  name.append(swatch, text);
  if (row.rationale) {
    const why = element('span', 'legend-why', row.rationale);
    if (contentLang) why.lang = contentLang;
    name.append(why);
  }
  tr.append(
    name,
    cell(formatPercent(row.share), { className: 'num legend-share' }),
    cell(formatEur(row.amount), { className: 'num legend-amount' }),
  );
  return tr;
}

function unallocatedRow(share) {
  const tr = element('tr', 'legend-rest');
  const name = cell(null, { header: true, scope: 'row' });
  const swatch = element('span', 'swatch');
  swatch.style.background = UNALLOCATED;
  swatch.setAttribute('aria-hidden', 'true');
  name.append(swatch, element('span', 'legend-name', t('chart.unallocated')));
  tr.append(name, cell(formatPercent(share), { className: 'num' }), cell('', { className: 'num' }));
  return tr;
}

// ---------------------------------------------------------------- timeline

/** Steps sorted by step_number: the order the model meant, whatever order it wrote. */
export function sortedSteps(steps) {
  return [...(steps ?? [])].sort((a, b) => (Number(a.step_number) || 0) - (Number(b.step_number) || 0));
}

/**
 * Week ranges (1-based, inclusive) for `count` steps spread in order over `weeks`:
 * the model gives no weeks per step, so step i takes the i-th equal slice, and
 * every step gets at least one week (several short steps may share a week).
 */
export function spreadSteps(count, weeks) {
  const ranges = [];
  for (let i = 0; i < count; i += 1) {
    const from = Math.floor((i * weeks) / count) + 1;
    const to = Math.max(from, Math.floor(((i + 1) * weeks) / count));
    ranges.push({ from: Math.min(from, weeks), to: Math.min(to, weeks) });
  }
  return ranges;
}

export function weekRangeText(range, tag = false) {
  if (range.from === range.to) return t(tag ? 'timeline.tag_week' : 'timeline.week', { from: range.from });
  return t(tag ? 'timeline.tag_weeks' : 'timeline.weeks', { from: range.from, to: range.to });
}

/** The timeline SVG: one bar per step over a week axis. */
export function timelineSvg(steps, ranges, weeks) {
  const width = 640;
  const gutter = 36;
  const right = 8;
  const top = 22;
  const row = 24;
  const height = top + steps.length * row + 4;
  const span = (width - gutter - right) / weeks;
  const items = steps
    .map((step, i) => t('timeline.item', { step: step.step_number, range: weekRangeText(ranges[i]) }))
    .join('; ');
  const label = t('timeline.label', { weeks: formatWeeks(weeks), items });
  const svg = svgElement('svg', {
    class: 'timeline',
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': label,
  });
  svg.append(svgElement('title', {}, label));
  svg.append(weekGrid(weeks, { gutter, top, span, height }));
  steps.forEach((step, i) => {
    const y = top + i * row;
    const { from, to } = ranges[i];
    svg.append(
      svgElement('text', { class: 'tl-step', x: gutter - 8, y: y + row / 2 + 4, 'text-anchor': 'end' }, String(step.step_number)),
      svgElement('rect', {
        class: 'tl-bar',
        x: (gutter + (from - 1) * span + 1).toFixed(2),
        y: y + 4,
        width: Math.max(2, (to - from + 1) * span - 2).toFixed(2),
        height: row - 8,
        rx: 5,
        fill: PALETTE[i % PALETTE.length],
        'data-step': step.step_number,
        'data-from': from,
        'data-to': to,
      }),
    );
  });
  return svg;
}

function weekGrid(weeks, { gutter, top, span, height }) {
  const group = svgElement('g', { class: 'tl-grid', 'aria-hidden': 'true' });
  // Label every week when there is room, else every 2nd, 4th, ... (always week 1).
  const every = [1, 2, 4, 8, 13, 26, 52].find((n) => weeks / n <= 13) ?? Math.ceil(weeks / 12);
  for (let week = 1; week <= weeks; week += 1) {
    const x = gutter + (week - 1) * span;
    if (weeks <= 60 || (week - 1) % every === 0) {
      group.append(svgElement('line', { x1: x, x2: x, y1: top - 4, y2: height, class: 'tl-line' }));
    }
    if ((week - 1) % every === 0) {
      group.append(svgElement('text', { class: 'tl-tick', x: x + 3, y: top - 8 }, t('timeline.tick', { n: week })));
    }
  }
  return group;
}

// ---------------------------------------------------------------- KPIs

/**
 * KPIs as a compact table. A KPI written as "indicator: target" gets its own
 * target column; when none is, the table has the indicator alone.
 */
export function kpiTable(kpis, contentLang) {
  const parsed = kpis.map((kpi) => splitKpi(String(kpi)));
  const withTarget = parsed.some((kpi) => kpi.target);
  const table = element('table', 'kpi-table');
  table.append(element('caption', 'visually-hidden', t('section.kpis')));
  const headRow = element('tr');
  headRow.append(cell(t('kpi.number'), { header: true, scope: 'col', className: 'num' }));
  headRow.append(cell(t('kpi.indicator'), { header: true, scope: 'col' }));
  if (withTarget) headRow.append(cell(t('kpi.target'), { header: true, scope: 'col' }));
  const head = element('thead');
  head.append(headRow);
  const body = element('tbody');
  parsed.forEach((kpi, index) => {
    const tr = element('tr');
    tr.append(cell(String(index + 1), { className: 'num' }));
    tr.append(cell(kpi.indicator, { lang: contentLang }));
    if (withTarget) tr.append(cell(kpi.target || t('facts.none'), { lang: kpi.target ? contentLang : undefined }));
    body.append(tr);
  });
  table.append(head, body);
  return table;
}

function splitKpi(text) {
  // "Newsletter sign-ups: 500 in 8 weeks" -> indicator and target. A colon inside a
  // URL or a time ("10:00") is not a separator: only ": " with text on both sides.
  const at = text.indexOf(': ');
  if (at > 0 && at < text.length - 2) return { indicator: text.slice(0, at).trim(), target: text.slice(at + 2).trim() };
  return { indicator: text, target: '' };
}
