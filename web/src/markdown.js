// The strategy as a Markdown file, made in the browser (no server round trip),
// with the interface language's headings and formats.

import { channelRows, sortedSteps, spreadSteps, weekRangeText } from './charts.js';
import { formatCost, formatDate, formatEur, formatPercent, formatWeeks, t } from './i18n.js';

/** One line of plain text: Markdown tables and list items cannot hold a newline. */
function inline(text) {
  return String(text ?? '').replace(/\s+/g, ' ').trim();
}

// Model text stays text in the export (issue 18: an injected `![x](https://attacker/...)`
// would be fetched by whatever opens the file). CommonMark lets any ASCII punctuation be
// backslash-escaped: these start images, links, HTML, emphasis, code and tables; "://",
// "www." and "@" are broken too, so that no autolink appears (cli/export.py: the same).
const MARKDOWN_SPECIAL = /[\\`*_{}[\]()<>!|~&#]/g;

/** One line of model text, as literal text in Markdown. */
export function mdText(text) {
  return inline(text)
    .replace(MARKDOWN_SPECIAL, (c) => `\\${c}`)
    .replace(/:(?=\/\/)/g, '\\:')
    .replace(/(www)\./gi, '$1\\.')
    .replace(/@/g, '\\@');
}

function tableCell(text) {
  return mdText(text);
}

export function strategyMarkdown(result, { date = new Date() } = {}) {
  const strategy = result.strategy;
  const lines = [`# ${mdText(strategy.strategy_name)}`, ''];
  if (strategy.summary) lines.push(mdText(strategy.summary), '');
  lines.push(
    `- **${t('facts.budget')}:** ${formatEur(Number(strategy.required_budget) || 0)}`,
    `- **${t('facts.timeline')}:** ${strategy.timeline_weeks ? formatWeeks(strategy.timeline_weeks) : t('facts.none')}`,
    `- **${t('facts.audience')}:** ${mdText(strategy.target_audience)}`,
    '',
  );
  lines.push(...channelsSection(strategy), ...stepsSection(strategy), ...listSection('section.kpis', strategy.kpis));
  lines.push(...listSection('section.messages', strategy.key_messages), ...sourcesSection(result.sources ?? []));
  lines.push('---', '', `_${t('md.footer', { model: result.model ?? 'Gemini', date: formatDate(date) })}_`, '');
  if (result.cost) lines.push(`_${t('md.cost', { amount: formatCost(result.cost) })}_`, '');
  return lines.join('\n');
}

function channelsSection(strategy) {
  const rows = channelRows(strategy);
  if (!rows.length) return [];
  const lines = [`## ${t('section.channels')}`, ''];
  lines.push(`| ${t('chart.channel')} | ${t('chart.share')} | ${t('chart.amount')} |`, '|---|---:|---:|');
  for (const row of rows) {
    lines.push(`| ${tableCell(row.name)} | ${formatPercent(row.share)} | ${formatEur(row.amount)} |`);
  }
  lines.push('');
  const reasons = rows.filter((row) => row.rationale);
  if (reasons.length) {
    lines.push(`### ${t('md.rationale')}`, '');
    for (const row of reasons) lines.push(`- **${mdText(row.name)}:** ${mdText(row.rationale)}`);
    lines.push('');
  }
  return lines;
}

function stepsSection(strategy) {
  const steps = sortedSteps(strategy.steps);
  if (!steps.length) return [];
  const weeks = Number(strategy.timeline_weeks) || 0;
  const ranges = weeks ? spreadSteps(steps.length, weeks) : [];
  const lines = [`## ${t('section.steps')}`, ''];
  steps.forEach((step, i) => {
    const when = weeks ? ` _(${weekRangeText(ranges[i], true)})_` : '';
    lines.push(`${Number(step.step_number) || 0}. ${mdText(step.description)}${when}`);
  });
  lines.push('');
  if (weeks) lines.push(`_${t('timeline.spread', { weeks: formatWeeks(weeks) })}_`, '');
  return lines;
}

function listSection(headingKey, items) {
  if (!items?.length) return [];
  return [`## ${t(headingKey)}`, '', ...items.map((item) => `- ${mdText(item)}`), ''];
}

function sourcesSection(sources) {
  if (!sources.length) return [];
  const lines = [`## ${t('section.sources')}`, ''];
  for (const source of sources) {
    const label = mdText(source.kind === 'search' ? source.domain || source.title : source.title || source.url);
    // The only links of the file: the task's recorded sources, and only http(s) ones.
    if (!/^https?:\/\//i.test(String(source.url))) {
      lines.push(`- ${label}`);
      continue;
    }
    const url = String(source.url).replace(/[<>\s]/g, (c) => encodeURIComponent(c));
    lines.push(`- [${label}](<${url}>)`);
  }
  lines.push('');
  return lines;
}

/** A file name from the strategy's name: letters and digits only, any script. */
export function markdownFilename(strategy) {
  const slug = inline(strategy.strategy_name)
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60);
  return `${slug || 'strategy'}.md`;
}

/** Hand a text to the browser as a file download (a Blob URL on a temporary link). */
export function downloadText(text, filename, type = 'text/markdown;charset=utf-8') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked later, not at once: the download may still be reading the Blob.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
