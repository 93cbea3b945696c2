// DOM building without HTML strings: every string becomes a text node or an
// attribute value, so nothing the collector stores (page keys, site names,
// comments) can ever be parsed as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(parent, kids) {
  for (const kid of kids) {
    if (kid == null || kid === false || kid === true) continue;
    if (Array.isArray(kid)) append(parent, kid);
    else if (kid instanceof Node) parent.appendChild(kid);
    else parent.appendChild(document.createTextNode(String(kid)));
  }
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'on') {
      for (const [type, fn] of Object.entries(v)) el.addEventListener(type, fn);
    } else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) if (dv != null) el.dataset[dk] = String(dv);
    } else if (k === 'text') {
      el.textContent = String(v);
    } else if (k === 'innerHTML' || k === 'outerHTML' || k.startsWith('on')) {
      throw new Error(`h(): ${k} is not allowed`);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

/** h('a', {href, class}, 'text', child, [more]) -> HTMLElement. */
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

/** The same for SVG elements. */
export function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

/** A figure people read and tests scrape: the raw number in data-value. */
export function fig(metric, figure, value, text, attrs = {}) {
  return h('span', { ...attrs, class: `fig ${attrs.class || ''}`.trim(), dataset: { metric, figure, value: value == null ? '' : value } }, text);
}
