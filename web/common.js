// Small helpers shared by the demo pages. Text from the server always goes in through
// textContent (el() children), never as HTML.

/** el('li', {class: 'x', onclick: fn}, 'text', child) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const STATUS_TEXT = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};

/** Keeps a .status element in step with a client's status. */
export function showStatus(node, status) {
  node.dataset.status = status;
  node.textContent = STATUS_TEXT[status] ?? status;
}

/** A stable, pleasant color for a name or id (FNV-1a, so "c3" and "c4" differ a lot). */
export function colorFor(id) {
  let h = 0x811c9dc5;
  for (const ch of String(id)) h = Math.imul(h ^ ch.codePointAt(0), 0x01000193) >>> 0;
  return `hsl(${h % 360} 52% 46%)`;
}

export function avatar(id, label, small = false) {
  const initial = (label || '?').trim().charAt(0) || '?';
  return el('span', { class: small ? 'avatar small' : 'avatar', style: `background:${colorFor(id)}`, 'aria-hidden': 'true' }, initial);
}

/** A small padlock (an SVG: emoji fonts are not everywhere). */
export function lockIcon(label = 'private') {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('class', 'lock');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const title = document.createElementNS(NS, 'title');
  title.textContent = label;
  const body = document.createElementNS(NS, 'rect');
  for (const [k, v] of Object.entries({ x: 3, y: 7, width: 10, height: 7.5, rx: 1.6, fill: 'currentColor' })) body.setAttribute(k, v);
  const shackle = document.createElementNS(NS, 'path');
  shackle.setAttribute('d', 'M5.2 7V5.2a2.8 2.8 0 0 1 5.6 0V7');
  shackle.setAttribute('fill', 'none');
  shackle.setAttribute('stroke', 'currentColor');
  shackle.setAttribute('stroke-width', '1.6');
  svg.append(title, body, shackle);
  return svg;
}

export function formatTime(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** "3 people" / "1 person" */
export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** Shows a dismissible banner in `host`; returns a function that removes it. */
export function banner(host, message, { kind = 'error', action, onAction } = {}) {
  host.replaceChildren();
  const close = () => host.replaceChildren();
  const node = el('div', { class: `banner ${kind === 'info' ? 'info' : ''}`, role: kind === 'info' ? 'status' : 'alert' },
    el('span', { class: 'grow' }, message),
    action ? el('button', { class: 'secondary', type: 'button', onclick: onAction }, action) : null,
    el('button', { class: 'ghost', type: 'button', 'aria-label': 'Dismiss', onclick: close }, '✕'));
  host.append(node);
  // Banners with a button wait for the reader; the others go away by themselves.
  if (!action) setTimeout(() => node.remove(), kind === 'info' ? 6000 : 10000);
  return close;
}
