// The live room inspector. Room types and live rooms come from the HTTP API (GET
// /api/status and /api/rooms, polled every 2 s). A selected room's state comes live over
// the WebSocket with the `watch` op: the server sends its patches to this page without
// making it a member (no hooks run, it is not counted). A server with an admin token wants
// it for `watch`; the page asks for it and keeps it in sessionStorage.
import { connect } from '/atrium-client.js';
import { el, showStatus, banner, formatTime } from '/common.js';

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'), toasts: $('toasts'), facts: $('facts'), refreshed: $('refreshed'),
  types: $('types'), typesEmpty: $('types-empty'), rooms: $('rooms'), roomsEmpty: $('rooms-empty'),
  filter: $('filter'), detailTitle: $('detail-title'), live: $('live'), detailEmpty: $('detail-empty'),
  tokenForm: $('token-form'), token: $('token'), tokenError: $('token-error'),
  stateView: $('state-view'), seq: $('seq'), members: $('members'), changed: $('changed'), json: $('json'),
  patchesPanel: $('patches-panel'), patchLog: $('patch-log'), patchEmpty: $('patch-empty'), clearLog: $('clear-log'),
};

const TOKEN_KEY = 'atrium.adminToken';
let client = null;
let rooms = [];
let selected = null;       // room id on screen
let watch = null;          // its Watch, while watching
let pollTimer = null;      // fallback for a server without `watch`
let lastChange = null;
let paths = new Map();     // JSON Pointer -> its element in the state view

// ---- HTTP: status and rooms ----------------------------------------------------------

async function getJson(path) {
  const res = await fetch(path, { cache: 'no-store' });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw Object.assign(new Error(body?.error?.message ?? `HTTP ${res.status}`), { code: body?.error?.code, status: res.status });
  return body;
}

function duration(seconds) {
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const h = Math.floor(s / 3600);
  return h < 48 ? `${h} h ${Math.floor((s % 3600) / 60)} min` : `${Math.floor(h / 24)} days`;
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function renderStatus(st) {
  const fact = (label, value) => el('div', { class: 'fact' }, el('span', {}, label), el('b', {}, value));
  ui.facts.replaceChildren(...[
    fact('Version', st.version ?? '?'),
    fact('Uptime', duration(st.uptime ?? 0)),
    fact('Connections', String(st.connections ?? 0)),
    st.memory ? fact('Lua memory', bytes(st.memory.luaBytes)) : null,
  ].filter(Boolean));
  const types = st.types ?? [];
  ui.typesEmpty.hidden = types.length > 0;
  const rows = [];
  for (const t of types) {
    rows.push(el('tr', { dataset: { type: t.name }, class: t.error ? 'has-error' : undefined },
      el('td', {}, el('b', {}, t.name), el('div', { class: 'mono muted small file', title: t.file ?? '' }, (t.file ?? '').split('/').pop())),
      el('td', { class: 'num' }, t.version ? String(t.version) : '–'),
      el('td', { class: 'muted nowrap' }, t.loadedAt ? formatTime(Date.parse(t.loadedAt)) : '–'),
      el('td', {}, t.error ? el('span', { class: 'pill bad' }, 'load error') : el('span', { class: 'pill good' }, 'ok'))));
    if (t.error) {
      rows.push(el('tr', { class: 'error-row' }, el('td', { colspan: '4' }, el('div', { class: 'type-error' }, t.error))));
    }
  }
  ui.types.replaceChildren(...rows);
}

function renderRooms() {
  const needle = ui.filter.value.trim().toLowerCase();
  const shown = rooms.filter((r) => !needle || r.id.toLowerCase().includes(needle))
    .sort((a, b) => a.id.localeCompare(b.id));
  ui.roomsEmpty.hidden = shown.length > 0;
  ui.roomsEmpty.replaceChildren(...(rooms.length
    ? [el('strong', {}, 'No room matches'), `Nothing has “${needle}” in its id.`]
    : [el('strong', {}, 'No live rooms'), 'Rooms appear here when someone joins one.']));
  ui.rooms.replaceChildren(...shown.map((r) => el('tr', {
    'aria-selected': r.id === selected ? 'true' : 'false',
    dataset: { room: r.id },
    tabindex: '0',
    onclick: () => select(r.id),
    onkeydown: (ev) => { if (ev.key === 'Enter') select(r.id); },
  },
  el('td', { class: 'mono' }, r.id),
  el('td', { class: 'num' }, String(r.members)),
  el('td', { class: 'num' }, String(r.seq)))));
  const mine = rooms.find((r) => r.id === selected);
  if (mine) ui.members.textContent = String(mine.members);
}

async function refresh() {
  try {
    const [st, list] = await Promise.all([getJson('/api/status'), getJson('/api/rooms')]);
    renderStatus(st);
    rooms = list.rooms ?? [];
    renderRooms();
    ui.refreshed.textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    ui.facts.replaceChildren(el('span', { class: 'type-error' }, `Cannot read the server status: ${err.message}`));
  }
}

ui.filter.addEventListener('input', renderRooms);

// ---- the state view ------------------------------------------------------------------

const escapeKey = (k) => k.replace(/~/g, '~0').replace(/\//g, '~1');
const pad = (depth) => '  '.repeat(depth);

// Pretty JSON as DOM (text only), remembering each value's element by its JSON Pointer.
function jsonNode(value, pointer, depth) {
  const node = document.createElement('span');
  paths.set(pointer, node);
  if (value === null) {
    node.className = 'z';
    node.textContent = 'null';
  } else if (Array.isArray(value)) {
    if (value.length === 0) node.textContent = '[]';
    else {
      node.append('[\n');
      value.forEach((v, i) => node.append(pad(depth + 1), jsonNode(v, `${pointer}/${i}`, depth + 1), i < value.length - 1 ? ',\n' : '\n'));
      node.append(`${pad(depth)}]`);
    }
  } else if (typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0) node.textContent = '{}';
    else {
      node.append('{\n');
      keys.forEach((k, i) => node.append(pad(depth + 1), el('span', { class: 'k' }, JSON.stringify(k)), ': ',
        jsonNode(value[k], `${pointer}/${escapeKey(k)}`, depth + 1), i < keys.length - 1 ? ',\n' : '\n'));
      node.append(`${pad(depth)}}`);
    }
  } else {
    node.className = typeof value === 'string' ? 's' : typeof value === 'number' ? 'n' : 'b';
    node.textContent = JSON.stringify(value);
  }
  return node;
}

let pendingRender = null;
function renderState(state, seq, ops) {
  // Coalesce bursts (a tick-driven room patches 20 times a second) to one paint per frame.
  const highlight = [...(pendingRender?.highlight ?? []), ...(ops ?? [])];
  const first = !pendingRender;
  pendingRender = { state, seq, highlight };
  if (!first) return;
  requestAnimationFrame(() => {
    const { state: s, seq: q, highlight: h } = pendingRender;
    pendingRender = null;
    paths = new Map();
    ui.json.replaceChildren(jsonNode(s, '', 0));
    ui.seq.textContent = String(q);
    for (const op of h) {
      let p = op.path;
      while (!paths.has(p) && p !== '') p = p.slice(0, p.lastIndexOf('/'));
      const node = paths.get(p);
      if (!node) continue;
      node.classList.add('changed');
      requestAnimationFrame(() => requestAnimationFrame(() => node.classList.add('fade')));
    }
  });
}

// One entry per patch, newest first, its ops in order.
function logPatch(seq, ops) {
  ui.patchEmpty.hidden = true;
  ui.patchLog.prepend(el('li', {},
    el('span', { class: 'seq' }, `#${seq}`),
    el('span', { class: 'time' }, new Date().toLocaleTimeString()),
    ops.map((op) => {
      const value = op.value === undefined ? '' : JSON.stringify(op.value);
      return el('div', { class: 'line' },
        el('span', { class: `op ${op.op}` }, op.op),
        el('span', {}, op.path || '/'),
        value ? el('span', { class: 'muted' }, ` ${value.length > 120 ? `${value.slice(0, 117)}…` : value}`) : null);
    })));
  while (ui.patchLog.children.length > 40) ui.patchLog.lastChild.remove();
}

ui.clearLog.addEventListener('click', () => {
  ui.patchLog.replaceChildren();
  ui.patchEmpty.hidden = false;
});

function setLive(text, on) {
  ui.live.textContent = text;
  ui.live.classList.toggle('off', !on);
}

function tickChanged() {
  if (!lastChange) { ui.changed.textContent = '–'; return; }
  const s = Math.round((Date.now() - lastChange) / 1000);
  ui.changed.textContent = s < 2 ? 'just now' : `${duration(s)} ago`;
}

// ---- selecting and watching ----------------------------------------------------------

async function stopWatching() {
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = null;
  const w = watch;
  watch = null;
  if (w) await w.unwatch().catch(() => {});
}

function showDetail(mode) {
  ui.detailEmpty.hidden = mode !== 'empty';
  ui.tokenForm.hidden = mode !== 'token';
  ui.stateView.hidden = mode !== 'state';
  ui.patchesPanel.hidden = mode !== 'state';
}

async function select(id) {
  if (id === selected && (watch || pollTimer)) return;
  await stopWatching();
  selected = id;
  history.replaceState(null, '', id ? `#${id}` : location.pathname);
  renderRooms();
  ui.patchLog.replaceChildren();
  ui.patchEmpty.hidden = false;
  lastChange = null;
  if (!id) {
    ui.detailTitle.textContent = 'Room state';
    setLive('not watching', false);
    showDetail('empty');
    return;
  }
  ui.detailTitle.replaceChildren(el('span', { class: 'mono', style: 'text-transform:none;letter-spacing:0;font-size:14px;color:var(--text)' }, id));
  await startWatching(id);
}

async function startWatching(id) {
  const token = sessionStorage.getItem(TOKEN_KEY) || undefined;
  setLive('connecting', false);
  let w;
  try {
    w = await client.watch(id, { token });
  } catch (err) {
    if (selected !== id) return;
    if (err.code === 'unauthorized') {
      ui.tokenError.hidden = !token;
      showDetail('token');
      setLive('needs token', false);
      ui.token.focus();
    } else if (err.code === 'not_found') {
      showDetail('empty');
      ui.detailEmpty.replaceChildren(el('strong', {}, 'No such room'), `${id} does not exist (any more).`);
      setLive('not watching', false);
    } else if (err.code === 'unknown_op') {
      poll(id); // a server without `watch`: snapshots over HTTP instead
    } else {
      banner(ui.toasts, `Cannot watch ${id}: ${err.message}`);
      setLive('error', false);
    }
    return;
  }
  if (selected !== id) {
    w.unwatch();
    return;
  }
  watch = w;
  showDetail('state');
  setLive('live', true);
  renderState(w.state, w.seq);
  const mine = rooms.find((r) => r.id === id);
  ui.members.textContent = mine ? String(mine.members) : '–';
  w.on('state', (state, ops) => {
    if (watch !== w) return;
    lastChange = Date.now();
    tickChanged();
    renderState(state, w.seq, ops);
    if (ops) logPatch(w.seq, ops);
    const row = rooms.find((r) => r.id === id);
    if (row && row.seq !== w.seq) {
      row.seq = w.seq;
      renderRooms();
    }
  });
  w.on('left', (reason) => {
    if (watch !== w) return;
    watch = null;
    setLive(reason === 'closed' ? 'room closed' : 'stopped', false);
    banner(ui.toasts, reason === 'closed' ? `${id} was closed: the state shown is its last one.` : `Stopped watching ${id} (${reason}).`, { kind: 'info' });
  });
}

function poll(id) {
  showDetail('state');
  setLive('polling', true);
  let seq = -1;
  const once = async () => {
    try {
      const r = await getJson(`/api/rooms/${id}`);
      if (selected !== id) return;
      if (r.seq !== seq) {
        if (seq >= 0) lastChange = Date.now();
        seq = r.seq;
        renderState(r.state, r.seq);
      }
      ui.members.textContent = String(r.members);
    } catch (err) {
      setLive(err.code === 'not_found' ? 'room closed' : 'error', false);
      clearInterval(pollTimer);
      pollTimer = null;
    }
  };
  once();
  pollTimer = setInterval(once, 1000);
}

ui.tokenForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = ui.token.value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  ui.token.value = '';
  if (selected) startWatching(selected);
});

// ---- start ---------------------------------------------------------------------------

async function start() {
  refresh();
  setInterval(refresh, 2000);
  setInterval(tickChanged, 1000);
  showDetail('empty');
  try {
    client = await connect('/ws');
  } catch (err) {
    showStatus(ui.status, 'closed');
    banner(ui.toasts, `No live updates: cannot open a WebSocket (${err.message}).`, { action: 'Retry', onAction: () => location.reload() });
    return;
  }
  window.atrium = client;
  showStatus(ui.status, client.status);
  client.on('status', (s) => showStatus(ui.status, s));
  const id = decodeURIComponent(location.hash.slice(1));
  if (/^[A-Za-z0-9_.:@-]{1,128}$/.test(id)) select(id);
}

start();
