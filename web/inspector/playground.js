// The playground: act on a room as a client would. Every "Join" opens a new connection (a
// new client id, like a new player), so two tabs of the playground can play against each
// other. The active client calls actions, emits events and leaves; every request and its
// reply (the result, or the error's code, message and where), and what the client is sent
// (events, `left`), go to one log, newest first.
import { connect } from '/_atrium/atrium-client.mjs';
import { el, colorFor } from '/_atrium/common.js';
import { jsonField, preview } from '/_atrium/inspector/json.js';

const ROOM_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;
const MAX_LOG = 200;

/**
 * ui: the playground's elements (see inspect.html). hooks.actionsOf(roomId) lists the
 * declared actions of a room's type; hooks.joined(roomId) runs after a successful join;
 * hooks.changed() after anything that changes who is in which room.
 */
export function createPlayground(ui, hooks) {
  const players = [];   // {client, id, roomId, payload, room, out, offs}
  let active = null;
  let autoRoom = '';    // what the room field was filled with from the selection

  const payloadField = jsonField(ui.payload, ui.payloadError, { kind: 'object', empty: undefined, label: 'Payload' });
  const argsField = jsonField(ui.args, ui.argsError, { empty: [], label: 'Arguments' });
  const dataField = jsonField(ui.data, ui.dataError, { empty: undefined, label: 'Data' });

  // ---- the log -----------------------------------------------------------------------

  function logEntry(player, verb, target, detail) {
    ui.logEmpty.hidden = true;
    const result = el('div', { class: 'result pending' }, '…');
    const li = el('li', { class: 'entry', dataset: { verb, client: player?.id ?? '' } },
      el('div', { class: 'entry-head' },
        player ? el('span', { class: 'who', style: `--who:${colorFor(player.id)}` }, player.id) : null,
        el('span', { class: 'verb' }, verb),
        target ? el('span', { class: 'target' }, target) : null,
        detail !== undefined && detail !== '' ? el('span', { class: 'detail' }, detail) : null,
        el('time', {}, new Date().toLocaleTimeString())),
      result);
    ui.log.prepend(li);
    while (ui.log.children.length > MAX_LOG) ui.log.lastChild.remove();
    return {
      ok(text) {
        li.classList.add('ok');
        result.className = 'result';
        result.replaceChildren(el('span', { class: 'arrow' }, 'ok'), ...(text === undefined ? [] : [el('span', { class: 'value' }, text)]));
      },
      err(err) {
        li.classList.add('err');
        result.className = 'result';
        result.replaceChildren(...errorParts(err));
      },
      note(text) {
        result.className = 'result';
        result.replaceChildren(el('span', { class: 'value' }, text));
      },
    };
  }

  ui.clearLog.addEventListener('click', () => {
    ui.log.replaceChildren();
    ui.logEmpty.hidden = false;
  });

  // ---- clients -------------------------------------------------------------------------

  function renderTabs() {
    ui.tabs.replaceChildren(...players.map((p) => el('button', {
      type: 'button',
      role: 'tab',
      class: `client-tab${p.out ? ' out' : ''}`,
      'aria-selected': p === active ? 'true' : 'false',
      'aria-controls': 'play-client',
      dataset: { client: p.id },
      title: p.out ? `${p.id}: ${p.out}` : `${p.id} in ${p.roomId}`,
      tabindex: p === active ? '0' : '-1',
      onclick: () => activate(p),
      onkeydown: (ev) => {
        const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[ev.key];
        if (!step) return;
        ev.preventDefault();
        activate(players[(players.indexOf(p) + step + players.length) % players.length]);
        ui.tabs.querySelector('[aria-selected="true"]')?.focus();
      },
    }, el('span', { class: 'dot', style: `background:${colorFor(p.id)}`, 'aria-hidden': 'true' }), p.id,
    el('span', { class: 'muted' }, ` · ${p.roomId}`))));
    ui.noClients.hidden = players.length > 0;
    ui.clientPanel.hidden = !active;
    if (!active) return;
    const p = active;
    ui.who.replaceChildren(
      el('b', {}, p.id), p.out ? ' was in ' : ' in ', el('span', { class: 'mono' }, p.roomId),
      ...(p.out ? [] : [el('span', { class: 'pill good' }, 'joined')]));
    ui.out.textContent = p.out ? `Out of the room: ${p.out}` : '';
    ui.out.hidden = !p.out;
    ui.leave.hidden = !!p.out;
    ui.rejoin.hidden = !p.out;
    ui.remove.hidden = !p.out;
    for (const b of [ui.callButton, ui.emitButton]) b.disabled = !!p.out;
    renderActions();
  }

  function renderActions() {
    const names = active ? hooks.actionsOf(active.roomId) : [];
    ui.actions.replaceChildren(...names.map((name) => el('button', {
      type: 'button', class: 'chip', 'aria-label': `Use action ${name}`,
      onclick: () => { ui.method.value = name; ui.args.focus(); },
    }, name)));
    ui.actions.hidden = names.length === 0;
    ui.methodList.replaceChildren(...names.map((name) => el('option', { value: name })));
  }

  function activate(p) {
    active = p;
    renderTabs();
    if (p && !p.out) hooks.joined(p.roomId);
  }

  function watchRoom(p, room) {
    p.room = room;
    p.out = null;
    p.offs.forEach((off) => off());
    p.offs = [
      room.on('event', ({ event, data, from }) => {
        logEntry(p, 'got event', event, from ? `from ${from}` : undefined).note(preview(data));
      }),
      room.on('left', (reason, message) => {
        if (reason === 'leave' || reason === 'replaced') return;
        p.out = message ? `${reason}: ${message}` : reason;
        const entry = logEntry(p, 'left', p.roomId);
        entry.err({ code: reason, message: message || (reason === 'closed' ? 'the room was closed' : '') });
        renderTabs();
        hooks.changed();
      }),
    ];
  }

  async function join(roomId, payload) {
    let client;
    try {
      client = await connect('/ws');
    } catch (err) {
      logEntry(null, 'connect', '/ws').err(err);
      return;
    }
    const p = { client, id: client.id, roomId, payload, room: null, out: null, offs: [] };
    const entry = logEntry(p, 'join', roomId, payload === undefined ? undefined : preview(payload));
    try {
      const room = await client.join(roomId, payload);
      entry.ok(`seq ${room.seq}`);
      watchRoom(p, room);
      players.push(p);
      client.on('status', (s) => {
        if (s === 'closed' && !p.out) {
          p.out = 'disconnected';
          renderTabs();
        }
      });
      activate(p);
      hooks.changed();
    } catch (err) {
      entry.err(err);
      client.close();
    }
  }

  ui.joinForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const roomId = ui.room.value.trim();
    const okId = ROOM_ID.test(roomId);
    ui.roomError.hidden = okId;
    if (okId) ui.room.removeAttribute('aria-invalid');
    else ui.room.setAttribute('aria-invalid', 'true');
    if (!okId) {
      ui.roomError.textContent = roomId ? 'A room id is 1 to 128 of A-Z a-z 0-9 _ . : @ -, like counter:demo.' : 'Type a room id, like counter:demo.';
      ui.room.focus();
    }
    const payload = payloadField.read();
    if (!okId || !payload.ok) return;
    ui.joinButton.disabled = true;
    autoRoom = roomId; // used: from now on the field follows the selected room again
    try {
      await join(roomId, payload.value);
    } finally {
      ui.joinButton.disabled = false;
    }
  });
  ui.room.addEventListener('input', () => {
    if (!ui.roomError.hidden && ROOM_ID.test(ui.room.value.trim())) {
      ui.roomError.hidden = true;
      ui.room.removeAttribute('aria-invalid');
    }
  });

  ui.callForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const p = active;
    if (!p || p.out) return;
    const method = ui.method.value.trim();
    ui.methodError.hidden = method !== '';
    if (!method) {
      ui.methodError.textContent = 'Type the name of an action.';
      ui.method.focus();
    }
    const parsed = argsField.read();
    if (!method || !parsed.ok) return;
    const args = Array.isArray(parsed.value) ? parsed.value : [parsed.value];
    const entry = logEntry(p, 'call', method, preview(args));
    try {
      const result = await p.room.call(method, ...args);
      entry.ok(result === undefined ? undefined : preview(result));
    } catch (err) {
      entry.err(err);
    }
  });
  ui.method.addEventListener('input', () => { if (ui.method.value.trim()) ui.methodError.hidden = true; });

  ui.emitForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const p = active;
    if (!p || p.out) return;
    const event = ui.event.value.trim();
    ui.eventError.hidden = event !== '';
    if (!event) {
      ui.eventError.textContent = 'Type an event name.';
      ui.event.focus();
    }
    const parsed = dataField.read();
    if (!event || !parsed.ok) return;
    const entry = logEntry(p, 'emit', event, parsed.value === undefined ? undefined : preview(parsed.value));
    try {
      await p.room.emit(event, parsed.value);
      entry.ok();
    } catch (err) {
      entry.err(err);
    }
  });
  ui.event.addEventListener('input', () => { if (ui.event.value.trim()) ui.eventError.hidden = true; });

  // Leave: the client leaves the room and its connection closes.
  ui.leave.addEventListener('click', async () => {
    const p = active;
    if (!p) return;
    const entry = logEntry(p, 'leave', p.roomId);
    try {
      await p.room.leave();
      entry.ok();
    } catch (err) {
      entry.err(err);
    }
    drop(p);
  });

  ui.rejoin.addEventListener('click', async () => {
    const p = active;
    if (!p || !p.out) return;
    if (p.client.status === 'closed') {
      drop(p);
      await join(p.roomId, p.payload);
      return;
    }
    const entry = logEntry(p, 'join', p.roomId, p.payload === undefined ? undefined : preview(p.payload));
    try {
      const room = await p.client.join(p.roomId, p.payload);
      entry.ok(`seq ${room.seq}`);
      watchRoom(p, room);
      activate(p);
      hooks.changed();
    } catch (err) {
      entry.err(err);
    }
  });

  ui.remove.addEventListener('click', () => {
    if (active) drop(active);
  });

  function drop(p) {
    p.offs.forEach((off) => off());
    p.client.close();
    const i = players.indexOf(p);
    if (i >= 0) players.splice(i, 1);
    if (active === p) active = players[Math.min(i, players.length - 1)] ?? null;
    renderTabs();
    hooks.changed();
  }

  renderTabs();

  return {
    /** Client ids of the playground's connections. */
    clientIds: () => new Set(players.map((p) => p.id)),
    /** The inspector selected a room: offer it in the room field, unless something was typed. */
    suggestRoom(id, force = false) {
      if (!id || (!force && ui.room.value.trim() && ui.room.value.trim() !== autoRoom)) return;
      ui.room.value = id;
      autoRoom = id;
    },
    /** The room types changed (a reload): the action list may have too. */
    typesChanged: renderActions,
  };
}

/** An error's parts for a log: code, message, and where in the script when known. */
export function errorParts(err) {
  return [
    el('span', { class: 'code' }, err.code ?? 'error'),
    err.message && err.message !== err.code ? el('span', { class: 'msg' }, err.message) : null,
    err.where ? el('span', { class: 'where' }, err.where) : null,
  ].filter(Boolean);
}
