// JSON for the inspector: the live state drawn as DOM (text only, every value findable by
// its JSON Pointer), one-line previews for logs, and the playground's JSON fields, which
// say what is wrong under the field instead of in the console.
import { el } from '/_atrium/common.js';

const escapeKey = (k) => k.replace(/~/g, '~0').replace(/\//g, '~1');
const pad = (depth) => '  '.repeat(depth);

/** Pretty JSON as DOM; `paths` gets each value's element under its JSON Pointer. */
export function jsonNode(value, paths, pointer = '', depth = 0) {
  const node = document.createElement('span');
  paths.set(pointer, node);
  if (value === null || value === undefined) {
    node.className = 'z';
    node.textContent = 'null';
  } else if (Array.isArray(value)) {
    if (value.length === 0) node.textContent = '[]';
    else {
      node.append('[\n');
      value.forEach((v, i) => node.append(pad(depth + 1), jsonNode(v, paths, `${pointer}/${i}`, depth + 1),
        i < value.length - 1 ? ',\n' : '\n'));
      node.append(`${pad(depth)}]`);
    }
  } else if (typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0) node.textContent = '{}';
    else {
      node.append('{\n');
      keys.forEach((k, i) => node.append(pad(depth + 1), el('span', { class: 'k' }, JSON.stringify(k)), ': ',
        jsonNode(value[k], paths, `${pointer}/${escapeKey(k)}`, depth + 1), i < keys.length - 1 ? ',\n' : '\n'));
      node.append(`${pad(depth)}}`);
    }
  } else {
    node.className = typeof value === 'string' ? 's' : typeof value === 'number' ? 'n' : 'b';
    node.textContent = JSON.stringify(value);
  }
  return node;
}

/** One line of JSON, cut at `max` characters. */
export function preview(value, max = 400) {
  let text;
  try {
    text = value === undefined ? '' : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

const KINDS = {
  object: { test: (v) => v !== null && typeof v === 'object' && !Array.isArray(v), want: 'a JSON object, like {"name": "Ada"}' },
  any: { test: () => true, want: 'JSON' },
};

/**
 * A text input that holds JSON. read() parses it: {ok: true, value} or {ok: false} with the
 * reason shown in `errorNode` (and aria-invalid on the input). Empty means `empty`. Once an
 * error shows, it is checked again as you type, so it goes away as soon as the text is right.
 */
export function jsonField(input, errorNode, { kind = 'any', empty = undefined, label = 'JSON' } = {}) {
  const read = () => {
    const text = input.value.trim();
    let value = empty;
    if (text !== '') {
      try {
        value = JSON.parse(text);
      } catch (err) {
        return fail(`${label}: not valid JSON (${err.message}).`);
      }
      if (!KINDS[kind].test(value)) return fail(`${label}: must be ${KINDS[kind].want}.`);
    }
    clear();
    return { ok: true, value };
  };
  const fail = (message) => {
    errorNode.textContent = message;
    errorNode.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    return { ok: false };
  };
  const clear = () => {
    errorNode.textContent = '';
    errorNode.hidden = true;
    input.removeAttribute('aria-invalid');
  };
  input.addEventListener('input', () => {
    if (input.getAttribute('aria-invalid') === 'true') read();
  });
  input.addEventListener('blur', read);
  return { read, clear, fail };
}
