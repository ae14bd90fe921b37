// Small DOM helpers. Text only ever goes in through textContent and attributes:
// whatever the model wrote is untrusted and is never parsed as markup.

export const $ = (id) => document.getElementById(id);

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svgElement(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function fillList(list, items, fill) {
  list.replaceChildren(
    ...items.map((value, index) => {
      const item = document.createElement('li');
      fill(item, value, index);
      return item;
    }),
  );
}

export function setOptionalText(node, text) {
  node.textContent = text ?? '';
  node.hidden = !text;
}

/** A table cell; `header` makes a <th scope>. */
export function cell(text, { header = false, scope, className, lang } = {}) {
  const node = element(header ? 'th' : 'td', className, text);
  if (scope) node.scope = scope;
  if (lang) node.lang = lang;
  return node;
}

export function isHttpUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
