// The inspector and playground (/_atrium/inspect). Room types and live rooms come from the
// HTTP API (GET /api/status and /api/rooms, polled every 2 s). The selected room (the URL
// hash, followed live) is watched over the WebSocket with the `watch` op: its state, the
// patches, the events it broadcasts and its script failures (`fault` frames) come to this
// page without making it a member. The playground (inspector/playground.js) acts on rooms
// as ordinary clients; kicking and closing use the HTTP write routes, with the admin token
// when the server has one (inspector/admin.js).
import { connect } from '/_atrium/atrium-client.mjs';
import { el, showStatus, banner, formatTime, colorFor } from '/_atrium/common.js';
import { jsonNode, preview } from '/_atrium/inspector/json.js';
import { adminToken, getJson, write, confirmWrite } from '/_atrium/inspector/admin.js';
import { createPlayground, errorParts } from '/_atrium/inspector/playground.js';

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'), toasts: $('toasts'), facts: $('facts'), refreshed: $('refreshed'),
  adminState: $('admin-state'), adminForget: $('admin-forget'), reload: $('reload'),
  types: $('types'), typesEmpty: $('types-empty'), rooms: $('rooms'), roomsEmpty: $('rooms-empty'),
  filter: $('filter'), detailTitle: $('detail-title'), live: $('live'), closeRoom: $('close-room'),
  detailEmpty: $('detail-empty'), tokenForm: $('token-form'), token: $('token'), tokenError: $('token-error'),
  faultStrip: $('fault-strip'), stateView: $('state-view'), seq: $('seq'), members: $('members'),
  script: $('script'), changed: $('changed'), json: $('json'),
  membersPanel: $('members-panel'), memberRows: $('member-rows'), membersEmpty: $('members-empty'), membersNote: $('members-note'),
  logs: $('logs'), eventLog: $('event-log'), eventsEmpty: $('events-empty'), faultCount: $('fault-count'), clearEvents: $('clear-events'),
  patchLog: $('patch-log'), patchEmpty: $('patch-empty'), clearLog: $('clear-log'),
};
const dialog = {
  dialog: $('admin-dialog'), form: $('admin-form'), title: $('admin-title'), text: $('admin-text'),
  reasonRow: $('admin-reason-row'), reason: $('admin-reason'), tokenRow: $('admin-token-row'), token: $('admin-token'),
  error: $('admin-error'), cancel: $('admin-cancel'), confirm: $('admin-confirm'),
};

const ROOM_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;
const MAX_EVENTS = 200;
const MAX_PATCHES = 60;

let client = null;
let types = new Map();     // name -> the type from /api/status
let rooms = [];            // from /api/rooms
let selected = null;       // the room on screen (the URL hash)
let watch = null;          // its Watch, while watching
let waitingFor = null;     // selected but not open: watched as soon as it shows in /api/rooms
let pollTimer = null;      // fallback for a server without `watch`
let lastChange = null;
let faults = 0;
let members = [];
let paths = new Map();     // JSON Pointer -> its element in the state view

const typeOf = (id) => (id.includes(':') ? id.slice(0, id.indexOf(':')) : null);

// ---- server, types, rooms -----------------------------------------------------------

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  const h = Math.floor(s / 3600);
  return h < 48 ? `${h} h ${Math.floor((s % 3600) / 60)} min` : `${Math.floor(h / 24)} days`;
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

function ago(ms) {
  const s = Math.round((Date.now() - ms) / 1000);
  return s < 2 ? 'just now' : `${duration(s)} ago`;
}

function renderServer(st) {
  const fact = (label, value, title) => el('div', { class: 'fact', title }, el('span', {}, label), el('b', {}, value));
  const mem = st.memory;
  ui.facts.replaceChildren(...[
    fact('Version', st.version ?? '?'),
    fact('Uptime', duration(st.uptime ?? 0)),
    fact('Connections', String(st.connections ?? 0)),
    mem ? fact('Lua memory', bytes(mem.luaBytes), mem.luaCapBytes ? `of ${bytes(mem.luaCapBytes)}; ${bytes(mem.roomCapBytes ?? 0)} per room` : undefined) : null,
  ].filter(Boolean));
}

/** "v2 serving · v3 failed to load: ..." for a type whose last load failed. */
function loadErrorText(t) {
  const v = t.version ?? 0;
  return v > 0 ? `v${v} serving · v${v + 1} failed to load: ${t.error}` : `nothing serving · v1 failed to load: ${t.error}`;
}

let typesShown = '';
function renderTypes(list) {
  const key = JSON.stringify([selected && typeOf(selected), list]);
  if (key === typesShown) return;
  typesShown = key;
  ui.typesEmpty.hidden = list.length > 0;
  const rows = [];
  for (const t of list) {
    const warnings = t.warnings ?? [];
    const pill = t.error ? el('span', { class: 'pill bad' }, 'load error')
      : warnings.length ? el('span', { class: 'pill warn' }, warnings.length === 1 ? '1 warning' : `${warnings.length} warnings`)
        : el('span', { class: 'pill good' }, 'ok');
    const file = (t.file ?? '').split('/').pop();
    const mine = selected && typeOf(selected) === t.name;
    rows.push(el('tr', { dataset: { type: t.name }, class: `type-row${mine ? ' current' : ''}` },
      el('td', {}, el('b', {}, t.name),
        t.rooms === undefined ? null : el('span', { class: 'muted small type-rooms' }, t.rooms === 1 ? ' · 1 room' : ` · ${t.rooms} rooms`),
        el('div', { class: 'mono muted small file', title: `${t.file ?? ''}${t.loadedAt ? `, loaded ${new Date(Date.parse(t.loadedAt)).toLocaleString()}` : ''}` },
          file, t.loadedAt ? ` · ${formatTime(Date.parse(t.loadedAt))}` : '')),
      el('td', { class: 'num' }, t.version ? `v${t.version}` : '–'),
      el('td', {}, pill)));
    const detail = [];
    if (t.error) detail.push(el('div', { class: 'type-error' }, loadErrorText(t)));
    if (warnings.length) {
      detail.push(el('ul', { class: 'type-warnings', 'aria-label': `Lint warnings for ${t.name}` },
        warnings.map((w) => el('li', {}, w))));
    }
    if (t.actions?.length) {
      detail.push(el('div', { class: 'type-actions' }, el('span', { class: 'muted' }, 'actions '),
        t.actions.map((a) => el('code', { class: 'action' }, a))));
    }
    if (detail.length) rows.push(el('tr', { class: 'detail-row', dataset: { typeDetail: t.name } }, el('td', { colspan: '3' }, detail)));
  }
  ui.types.replaceChildren(...rows);
}

let roomsShown = '';
function renderRooms() {
  const needle = ui.filter.value.trim().toLowerCase();
  const shown = rooms.filter((r) => !needle || r.id.toLowerCase().includes(needle))
    .sort((a, b) => a.id.localeCompare(b.id));
  const mine = rooms.find((r) => r.id === selected);
  if (mine && watch) ui.members.textContent = String(mine.members);
  const key = JSON.stringify([needle, selected, rooms.length, shown]);
  if (key === roomsShown) return;
  roomsShown = key;
  ui.roomsEmpty.hidden = shown.length > 0;
  ui.roomsEmpty.replaceChildren(...(rooms.length
    ? [el('strong', {}, 'No room matches'), `Nothing has “${needle}” in its id.`]
    : [el('strong', {}, 'No live rooms'), 'Rooms appear here when someone joins one.']));
  ui.rooms.replaceChildren(...shown.map((r) => el('tr', {
    'aria-selected': r.id === selected ? 'true' : 'false',
    dataset: { room: r.id },
    tabindex: '0',
    title: r.memory === undefined ? undefined : `Lua memory: ${bytes(r.memory)}`,
    onclick: () => navigate(r.id),
    onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); navigate(r.id); } },
  },
  el('td', { class: 'mono' }, r.id,
    // durable: options.persist (docs/rooms.md "Durable rooms"); held: seats kept after a drop.
    r.persist ? el('span', { class: 'pill', style: 'margin-left:8px', title: 'Durable: state, meta and seats survive a restart' }, 'durable') : null,
    r.held ? el('span', { class: 'pill warn', style: 'margin-left:8px', title: 'Seats held for members whose connection dropped' }, `${r.held} held`) : null),
  el('td', { class: 'num' }, String(r.members)),
  el('td', { class: 'num' }, String(r.seq)))));
}

function renderScript() {
  const t = selected && types.get(typeOf(selected));
  if (!t) {
    ui.script.textContent = selected && !typeOf(selected) ? 'untyped' : '–';
    ui.script.className = '';
    return;
  }
  ui.script.textContent = t.error ? `${t.name} v${t.version} (v${t.version + 1} failed)` : `${t.name} v${t.version}`;
  ui.script.className = t.error ? 'bad-text' : t.warnings?.length ? 'warn-text' : '';
}

// What changed in the selected room's script since the last poll goes in its event log.
function noteReloads(before, after) {
  const name = selected && typeOf(selected);
  const a = name && before.get(name);
  const b = name && after.get(name);
  if (!a || !b || !(watch || waitingFor)) return;
  if (b.version !== a.version) logNote(`${b.file ?? name} reloaded: v${b.version} serving`, 'reload');
  if (b.error && b.error !== a.error) logNote(loadErrorText(b), 'load-error');
}

let refreshing = false;
async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const [st, list] = await Promise.all([getJson('/api/status'), getJson('/api/rooms')]);
    renderServer(st);
    const next = new Map((st.types ?? []).map((t) => [t.name, t]));
    noteReloads(types, next);
    types = next;
    renderTypes(st.types ?? []);
    renderScript();
    playground.typesChanged();
    rooms = list.rooms ?? [];
    renderRooms();
    ui.refreshed.textContent = `updated ${new Date().toLocaleTimeString()}`;
    if (waitingFor && waitingFor === selected && rooms.some((r) => r.id === selected)) {
      waitingFor = null;
      startWatching(selected);
    }
    if (selected) await refreshMembers();
  } catch (err) {
    ui.facts.replaceChildren(el('span', { class: 'type-error' }, `Cannot read the server status: ${err.message}`));
  } finally {
    refreshing = false;
  }
}

ui.filter.addEventListener('input', renderRooms);

// ---- members ------------------------------------------------------------------------

async function refreshMembers() {
  const id = selected;
  if (!id || !(watch || rooms.some((r) => r.id === id))) return;
  let list = [];
  try {
    list = (await getJson(`/api/rooms/${id}/members`)).members ?? [];
  } catch (err) {
    if (err.code !== 'not_found') {
      if (selected === id) ui.membersNote.textContent = `cannot list: ${err.message}`;
      return;
    }
  }
  if (selected !== id) return;
  members = list;
  renderMembers();
}

let membersShown = '';
function renderMembers() {
  const ours = playground.clientIds();
  const key = JSON.stringify([members, [...ours]]);
  if (key === membersShown) return;
  membersShown = key;
  ui.membersNote.textContent = members.length === 1 ? '1 member' : `${members.length} members`;
  ui.membersEmpty.hidden = members.length > 0;
  // connected false: the member dropped and its seat is held for the room's reconnectGrace.
  ui.memberRows.replaceChildren(...members.map((m) => el('tr', { dataset: m.connected === false ? { client: m.client, held: '' } : { client: m.client }, style: m.connected === false ? 'opacity:0.6' : undefined },
    el('td', { class: 'mono' },
      el('span', { class: 'dot', style: `background:${colorFor(m.client)}`, 'aria-hidden': 'true' }), m.client,
      ours.has(m.client) ? el('span', { class: 'tag' }, 'playground') : null,
      m.connected === false ? el('span', { class: 'pill warn', style: 'margin-left:8px', title: 'Dropped: the seat is held until the client resumes or the grace ends' }, 'held') : null),
    el('td', {}, m.userId == null ? el('span', { class: 'muted' }, 'anonymous') : el('span', { class: 'mono' }, m.userId)),
    el('td', { class: 'nowrap', title: m.joinedAt ? new Date(m.joinedAt).toLocaleString() : '' },
      m.joinedAt ? formatTime(m.joinedAt) : '–', m.joinedAt ? el('span', { class: 'muted small ago', dataset: { at: String(m.joinedAt) } }, ` · ${ago(m.joinedAt)}`) : null),
    el('td', { class: 'num' }, el('button', {
      type: 'button', class: 'danger-ghost small-button', 'aria-label': `Kick ${m.client}`,
      onclick: () => kick(m.client),
    }, 'Kick')))));
  if (watch) ui.members.textContent = String(members.length);
}

async function kick(clientId) {
  const id = selected;
  const done = await confirmWrite(dialog, {
    title: `Kick ${clientId}?`,
    text: `${clientId} is removed from ${id} and told the reason below. The room's onLeave runs with ctx.reason "kicked".`,
    confirm: 'Kick',
    reason: true,
    run: (reason) => write('POST', `/api/rooms/${id}/kick`, { client: clientId, reason: reason || undefined }),
  });
  if (!done) return;
  if (selected === id) logNote(`${clientId} was kicked from the inspector`, 'admin');
  refresh();
}

ui.closeRoom.addEventListener('click', async () => {
  const id = selected;
  if (!id) return;
  await confirmWrite(dialog, {
    title: `Close ${id}?`,
    text: 'Every member leaves with reason closed, and the room is destroyed with its state.',
    confirm: 'Close room',
    run: () => write('DELETE', `/api/rooms/${id}`),
  });
  refresh();
});

ui.reload.addEventListener('click', async () => {
  const run = () => write('POST', '/api/reload');
  try {
    await run();
  } catch (err) {
    if (err.code !== 'unauthorized') {
      banner(ui.toasts, `Reload failed: ${err.message}`);
      return;
    }
    if (!await confirmWrite(dialog, { title: 'Reload room scripts?', text: 'Loads every changed script now.', confirm: 'Reload', run })) return;
  }
  refresh();
});

function renderAdmin(token) {
  ui.adminState.textContent = token ? 'kept in this tab' : 'none in this tab';
  ui.adminForget.hidden = !token;
}
adminToken.onChange(renderAdmin);
ui.adminForget.addEventListener('click', () => adminToken.set(''));

// ---- the state view -----------------------------------------------------------------

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
    ui.json.replaceChildren(jsonNode(s, paths));
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
      const value = op.value === undefined ? '' : preview(op.value, 120);
      return el('div', { class: 'line' },
        el('span', { class: `op ${op.op}` }, op.op),
        el('span', {}, op.path || '/'),
        value ? el('span', { class: 'muted' }, ` ${value}`) : null);
    })));
  while (ui.patchLog.children.length > MAX_PATCHES) ui.patchLog.lastChild.remove();
}

ui.clearLog.addEventListener('click', () => {
  ui.patchLog.replaceChildren();
  ui.patchEmpty.hidden = false;
});

// ---- events and faults --------------------------------------------------------------

function logLine(kind, badge, ...parts) {
  ui.eventsEmpty.hidden = true;
  const li = el('li', { class: `ev ${kind}`, dataset: { kind } },
    el('time', {}, new Date().toLocaleTimeString()),
    el('span', { class: 'badge-kind' }, badge),
    el('div', { class: 'ev-body' }, ...parts));
  ui.eventLog.prepend(li);
  while (ui.eventLog.children.length > MAX_EVENTS) ui.eventLog.lastChild.remove();
  return li;
}

function logEvent(msg) {
  logLine('event', 'event',
    el('b', { class: 'name' }, msg.event),
    msg.from !== undefined ? el('span', { class: 'muted' }, ` from ${msg.from}`) : null,
    msg.data !== undefined ? el('div', { class: 'data mono' }, preview(msg.data, 1000)) : null);
}

function logFault(msg) {
  const err = msg.error ?? {};
  faults += 1;
  ui.faultCount.textContent = faults === 1 ? '1 fault' : `${faults} faults`;
  logLine('fault', 'fault',
    msg.in ? el('span', { class: 'in' }, `in ${msg.in}`) : null,
    el('div', { class: 'fault-parts' }, ...errorParts(err)),
    typeof msg.traceback === 'string' && msg.traceback
      ? el('details', { class: 'traceback' }, el('summary', {}, 'traceback'), el('pre', {}, msg.traceback))
      : null);
  ui.faultStrip.replaceChildren(
    el('b', {}, `Script error${msg.in ? ` in ${msg.in}` : ''}`),
    ...errorParts(err),
    el('span', { class: 'muted small' }, `${new Date().toLocaleTimeString()}${faults > 1 ? ` · ${faults} since watching` : ''}`),
    el('button', { class: 'ghost small-button', type: 'button', 'aria-label': 'Dismiss', onclick: () => { ui.faultStrip.hidden = true; } }, '✕'));
  ui.faultStrip.hidden = false;
}

function logNote(text, kind = 'note') {
  logLine(`note ${kind}`, kind === 'load-error' ? 'load' : kind === 'reload' ? 'reload' : 'info', el('span', {}, text));
}

ui.clearEvents.addEventListener('click', () => {
  ui.eventLog.replaceChildren();
  ui.eventsEmpty.hidden = false;
  faults = 0;
  ui.faultCount.textContent = '';
  ui.faultStrip.hidden = true;
});

// ---- selecting and watching ---------------------------------------------------------

function setLive(text, on) {
  ui.live.textContent = text;
  ui.live.classList.toggle('off', !on);
}

function tickChanged() {
  ui.changed.textContent = lastChange ? ago(lastChange) : '–';
}

async function stopWatching() {
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = null;
  waitingFor = null;
  const w = watch;
  watch = null;
  if (w) await w.unwatch().catch(() => {});
}

function showDetail(mode) {
  ui.detailEmpty.hidden = mode !== 'empty';
  ui.tokenForm.hidden = mode !== 'token';
  ui.stateView.hidden = mode !== 'state';
  ui.logs.hidden = !selected || mode === 'token';
  ui.membersPanel.hidden = !selected || mode === 'token';
  ui.closeRoom.hidden = mode !== 'state' || !watch;
}

function showWaiting(id, closed) {
  waitingFor = id;
  showDetail(closed ? 'state' : 'empty');
  ui.closeRoom.hidden = true;
  setLive(closed ? 'room closed' : 'waiting', false);
  if (closed) return;
  ui.logs.hidden = true;
  ui.membersPanel.hidden = true;
  ui.detailEmpty.replaceChildren(
    el('strong', {}, `${id} is not open`),
    'It shows here as soon as someone joins it. ',
    el('button', { type: 'button', class: 'secondary small-button', onclick: () => { playground.suggestRoom(id, true); $('play-payload').focus(); } }, 'Join it from the playground'));
}

/** Selects a room by the address, so the back button and links work. */
function navigate(id) {
  if (decodeURIComponent(location.hash.slice(1)) === id) select(id, true);
  else location.hash = id;
}

function fromHash() {
  const id = decodeURIComponent(location.hash.slice(1));
  return ROOM_ID.test(id) ? id : null;
}

async function select(id, retry = false) {
  if (id === selected && (watch || pollTimer || (waitingFor && !retry))) return;
  await stopWatching();
  selected = id;
  renderRooms();
  renderTypes([...types.values()]);
  renderScript();
  ui.patchLog.replaceChildren();
  ui.patchEmpty.hidden = false;
  ui.eventLog.replaceChildren();
  ui.eventsEmpty.hidden = false;
  ui.faultStrip.hidden = true;
  ui.faultCount.textContent = '';
  faults = 0;
  members = [];
  membersShown = '';
  renderMembers();
  lastChange = null;
  tickChanged();
  if (!id) {
    ui.detailTitle.textContent = 'Room state';
    setLive('not watching', false);
    ui.detailEmpty.replaceChildren(el('strong', {}, 'Pick a room'),
      'Its public state shows here and updates live, without joining it. Or join one from the playground.');
    showDetail('empty');
    return;
  }
  playground.suggestRoom(id);
  ui.detailTitle.replaceChildren(el('span', { class: 'room-title mono' }, id));
  refreshMembers();
  if (client) await startWatching(id);
}

async function startWatching(id) {
  const token = adminToken.get() || undefined;
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
      showWaiting(id, false);
    } else if (err.code === 'unknown_op') {
      poll(id); // a server without `watch`: snapshots over HTTP instead
    } else {
      banner(ui.toasts, `Cannot watch ${id}: ${err.message}`);
      setLive('error', false);
    }
    return;
  }
  if (selected !== id || watch) {
    if (watch !== w) w.unwatch();
    return;
  }
  watch = w;
  waitingFor = null;
  showDetail('state');
  setLive('live', true);
  renderState(w.state, w.seq);
  const mine = rooms.find((r) => r.id === id);
  ui.members.textContent = mine ? String(mine.members) : String(members.length || '–');
  refreshMembers();
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
  w.on('event', (ev) => { if (watch === w) logEvent(ev); });
  w.on('fault', (fault) => { if (watch === w) logFault(fault); });
  w.on('left', (reason) => {
    if (watch !== w) return;
    watch = null;
    if (reason === 'closed') {
      logNote(`${id} was closed; the state shown is its last one`, 'closed');
      showWaiting(id, true); // watched again if it opens again
      members = [];
      renderMembers();
      ui.members.textContent = '0';
    } else {
      setLive('stopped', false);
      ui.closeRoom.hidden = true;
      banner(ui.toasts, `Stopped watching ${id} (${reason}).`, { kind: 'info' });
    }
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
  adminToken.set(ui.token.value.trim());
  ui.token.value = '';
  if (selected) startWatching(selected);
});

window.addEventListener('hashchange', () => select(fromHash()));

// ---- the playground -----------------------------------------------------------------

const playground = createPlayground({
  joinForm: $('join-form'), room: $('play-room'), roomError: $('play-room-error'),
  payload: $('play-payload'), payloadError: $('play-payload-error'), joinButton: $('play-join'),
  tabs: $('play-clients'), noClients: $('play-none'), clientPanel: $('play-client'), who: $('play-who'),
  leave: $('play-leave'), rejoin: $('play-rejoin'), remove: $('play-remove'), out: $('play-out'),
  callForm: $('call-form'), method: $('play-method'), methodList: $('play-method-list'), methodError: $('play-method-error'),
  actions: $('play-actions'), args: $('play-args'), argsError: $('play-args-error'), callButton: $('play-call'),
  emitForm: $('emit-form'), event: $('play-event'), eventError: $('play-event-error'),
  data: $('play-data'), dataError: $('play-data-error'), emitButton: $('play-emit'),
  log: $('play-log'), logEmpty: $('play-log-empty'), clearLog: $('play-clear'),
}, {
  actionsOf: (roomId) => types.get(typeOf(roomId))?.actions ?? [],
  // A join (or picking a client) shows its room here, live.
  joined: (roomId) => {
    if (roomId !== selected) navigate(roomId);
    else if (!watch && !pollTimer) {
      waitingFor = null;
      startWatching(roomId);
    }
  },
  changed: () => refresh(),
});

// ---- start --------------------------------------------------------------------------

async function start() {
  renderAdmin(adminToken.get());
  showDetail('empty');
  refresh();
  setInterval(refresh, 2000);
  setInterval(() => {
    tickChanged();
    for (const node of ui.memberRows.querySelectorAll('.ago')) node.textContent = ` · ${ago(Number(node.dataset.at))}`;
  }, 1000);
  const first = fromHash();
  if (first) select(first);
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
  if (selected && !watch) startWatching(selected);
}

start();
