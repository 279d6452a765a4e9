// The chat page: the room list comes live from directory:main, each chat room is
// rooms/chat.lua (messages in state, who is here from its `members` action plus
// `chat:presence` events), and a private room asks for its password when a join is refused.
import { connect } from '/_atrium/atrium-client.mjs';
import { el, showStatus, avatar, formatTime, plural, banner, lockIcon } from '/_atrium/common.js';

const DIRECTORY = 'directory:main';
const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'), toasts: $('toasts'), name: $('name'),
  rooms: $('rooms'), roomsEmpty: $('rooms-empty'), create: $('create'),
  newName: $('new-name'), newPassword: $('new-password'),
  noRoom: $('no-room'), head: $('room-head'), title: $('room-title'), meta: $('room-meta'), conn: $('room-conn'),
  leave: $('leave'), messages: $('messages'), messagesEmpty: $('messages-empty'),
  compose: $('compose'), text: $('text'), composeError: $('compose-error'),
  peopleTitle: $('people-title'), members: $('members'), membersEmpty: $('members-empty'),
  dialog: $('password-dialog'), dialogTitle: $('password-title'), password: $('password'),
  passwordError: $('password-error'), passwordCancel: $('password-cancel'),
};

let client = null;
let directory = null;
// The room on screen: its Room, who is here (client id -> {client, name}), listener offs.
let current = null;
let joining = null;

// ---- your name -----------------------------------------------------------------------

ui.name.value = localStorage.getItem('atrium.name') || `Guest ${Math.floor(100 + Math.random() * 900)}`;
ui.name.addEventListener('change', () => {
  ui.name.value = ui.name.value.trim();
  localStorage.setItem('atrium.name', ui.name.value);
});
const myName = () => ui.name.value.trim();

// ---- rooms ---------------------------------------------------------------------------

function titleOf(id) {
  const entry = directory?.state.rooms.find((r) => r.id === id);
  return entry?.title || id.slice(id.indexOf(':') + 1);
}

function renderRooms() {
  const rooms = [...(directory?.state.rooms ?? [])]
    .sort((a, b) => b.members - a.members || a.title.localeCompare(b.title));
  ui.roomsEmpty.hidden = rooms.length > 0;
  ui.rooms.replaceChildren(...rooms.map((r) => el('li', {},
    el('button', {
      type: 'button',
      'aria-current': current?.room.id === r.id ? 'true' : 'false',
      title: r.id,
      dataset: { room: r.id },
      onclick: () => enter(r.id),
    },
    el('span', { class: 'room-name' }, r.title),
    r.isPrivate ? lockIcon('needs a password') : null,
    el('span', { class: 'count', title: plural(r.members, 'person', 'people') + ' here' }, String(r.members))))));
}

// A room name as typed ("Book club") to an id (chat:book-club).
function slug(title) {
  const s = title.toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60);
  return s || `room-${Math.random().toString(36).slice(2, 8)}`;
}

ui.create.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const title = ui.newName.value.trim();
  if (!title) return;
  const password = ui.newPassword.value;
  const ok = await enter(`chat:${slug(title)}`, { title, password: password || undefined });
  if (ok) ui.create.reset();
});

// ---- joining -------------------------------------------------------------------------

// Asks for a password; resolves with it, or null when cancelled.
function askPassword(title, wrong) {
  ui.dialogTitle.textContent = `“${title}” is private`;
  ui.passwordError.hidden = !wrong;
  ui.password.value = '';
  ui.dialog.showModal();
  ui.password.focus();
  return new Promise((resolve) => {
    const done = (value) => {
      ui.dialog.removeEventListener('close', onClose);
      ui.passwordCancel.removeEventListener('click', onCancel);
      resolve(value);
    };
    const onClose = () => done(ui.dialog.returnValue === 'join' ? ui.password.value : null);
    const onCancel = () => { ui.dialog.close('cancel'); };
    ui.dialog.returnValue = '';
    ui.dialog.addEventListener('close', onClose);
    ui.passwordCancel.addEventListener('click', onCancel);
  });
}

// Joins a chat room (creating it when it does not exist: title and password configure it).
// Resolves true when the room is on screen.
async function enter(id, opts = {}) {
  if (!client) return false;
  if (current?.room.id === id && current.room.joined) return true;
  if (joining === id) return false;
  joining = id;
  try {
    await leaveCurrent();
    let password = opts.password;
    for (let attempt = 0; ; attempt++) {
      const payload = { name: myName() || undefined, title: opts.title, password };
      try {
        show(await client.join(id, payload));
        return true;
      } catch (err) {
        if (err.code !== 'join_rejected') {
          banner(ui.toasts, `Could not join “${titleOf(id)}”: ${err.message}`);
          return false;
        }
        // Refused: ask for the password (saying it was wrong when one was given).
        password = await askPassword(opts.title || titleOf(id), password !== undefined);
        if (password === null) return false;
      }
    }
  } finally {
    joining = null;
    if (!current) showNoRoom();
  }
}

async function leaveCurrent() {
  if (!current) return;
  const { room, offs } = current;
  offs.forEach((off) => off());
  current = null;
  await room.leave().catch(() => {});
}

function show(room) {
  current = { room, members: new Map(), offs: [] };
  ui.toasts.replaceChildren(); // whatever went wrong before, this worked
  history.replaceState(null, '', `#${room.id}`);
  ui.noRoom.hidden = true;
  ui.head.hidden = false;
  ui.compose.hidden = false;
  ui.composeError.hidden = true;
  current.offs.push(
    room.on('state', (state, ops) => {
      renderRoom(false);
      if (!ops) refreshMembers(); // a whole new state (a rejoin): ask again who is here
    }),
    room.on('event', ({ event, data }) => {
      if (event !== 'chat:presence' || !current) return;
      if (data.here) current.members.set(data.client, data);
      else current.members.delete(data.client);
      renderMembers();
    }),
    // After a drop the server holds our seat: the room comes back with what we missed.
    room.on('resumed', ({ recovered }) => connLine(recovered ? 'Back (nothing missed)' : 'Back (state refreshed)', 4000)),
    room.on('left', (reason, message) => {
      const title = room.state.title || room.id;
      const why = {
        kicked: `You were removed from “${title}”${message ? `: ${message}` : '.'}`,
        closed: `“${title}” was closed.`,
        rejected: `Could not rejoin “${title}” after reconnecting: ${message}`,
        disconnect: 'The connection was lost.',
        replaced: message ? 'This chat was opened in another tab.' : undefined, // close 4002
      }[reason];
      if (why && reason === 'disconnect') banner(ui.toasts, why);
      else if (why && reason === 'replaced') banner(ui.toasts, why, { action: 'Reload', onAction: () => location.reload() });
      else if (why) banner(ui.toasts, why, { action: 'Join again', onAction: () => enter(room.id, { title: room.state.title }) });
      if (current?.room === room) {
        current.offs.forEach((off) => off());
        current = null;
        showNoRoom();
      }
    }),
  );
  renderRoom(true);
  renderRooms();
  refreshMembers();
  ui.text.focus();
}

// A line under the room's title while the connection is away, then how the room came back.
let connTimer = null;
function connLine(text, ms = 0) {
  clearTimeout(connTimer);
  ui.conn.textContent = text;
  ui.conn.hidden = !text;
  if (ms) connTimer = setTimeout(() => connLine(''), ms);
}

function showNoRoom() {
  if (current) return;
  if (location.hash) history.replaceState(null, '', location.pathname);
  ui.noRoom.hidden = false;
  ui.head.hidden = true;
  ui.compose.hidden = true;
  ui.composeError.hidden = true;
  ui.messages.hidden = true;
  ui.messagesEmpty.hidden = true;
  ui.messages.replaceChildren();
  renderMembers();
  renderRooms();
}

ui.leave.addEventListener('click', async () => {
  await leaveCurrent();
  showNoRoom();
});

// ---- the conversation ----------------------------------------------------------------

function renderRoom(scrollToEnd) {
  if (!current) return;
  const { state } = current.room;
  ui.title.replaceChildren(state.title || current.room.id);
  if (state.isPrivate) ui.title.append(el('span', { class: 'badge' }, lockIcon(), 'Private'));
  ui.meta.textContent = `${plural(state.online, 'person', 'people')} online · ${current.room.id}`;

  const box = ui.messages;
  const nearEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  let prev = null;
  box.replaceChildren(...state.messages.map((m) => {
    const first = !prev || prev.user !== m.user || prev.name !== m.name || m.at - prev.at > 5 * 60 * 1000;
    prev = m;
    const mine = m.user === client.id;
    const who = m.name || m.user;
    return el('li', { class: `message${first ? ' first' : ''}${mine ? ' mine' : ''}` },
      avatar(who, who),
      first ? el('div', { class: 'who' }, who, mine ? el('span', { class: 'you' }, ' (you)') : null,
        el('time', { datetime: new Date(m.at).toISOString() }, formatTime(m.at))) : null,
      el('div', { class: 'text' }, m.text));
  }));
  ui.messagesEmpty.hidden = state.messages.length > 0;
  box.hidden = state.messages.length === 0;
  if (scrollToEnd || nearEnd) box.scrollTop = box.scrollHeight;
  renderMembers();
}

async function refreshMembers() {
  const room = current?.room;
  if (!room) return;
  try {
    const list = await room.call('members');
    if (current?.room !== room) return;
    current.members = new Map(list.map((m) => [m.client, m]));
  } catch {
    // an older chat.lua without `members`: the count in the header still tells
  }
  renderMembers();
}

function renderMembers() {
  if (!current) {
    ui.peopleTitle.textContent = 'Online';
    ui.members.replaceChildren();
    ui.membersEmpty.hidden = false;
    ui.membersEmpty.textContent = 'Join a room to see who is here.';
    return;
  }
  const people = [...current.members.values()];
  ui.peopleTitle.textContent = `Online · ${current.room.state.online}`;
  ui.membersEmpty.hidden = people.length > 0;
  ui.membersEmpty.textContent = 'Nobody else is here yet.';
  ui.members.replaceChildren(...people.map((m) => {
    const label = m.name || m.client;
    return el('li', { dataset: { client: m.client } },
      avatar(label, label, true),
      el('span', {}, label),
      m.client === client.id ? el('span', { class: 'you' }, '(you)') : null,
      el('span', { class: 'dot', 'aria-hidden': 'true' }));
  }));
}

ui.compose.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const text = ui.text.value.trim();
  if (!text || !current) return;
  const room = current.room;
  ui.text.value = '';
  ui.composeError.hidden = true;
  try {
    await room.call('send', text);
    ui.messages.scrollTop = ui.messages.scrollHeight;
  } catch (err) {
    if (current?.room !== room) return;
    ui.text.value = text;
    ui.composeError.textContent = `Not sent: ${err.message}`;
    ui.composeError.hidden = false;
  }
});

// ---- start ---------------------------------------------------------------------------

function roomFromHash() {
  const id = decodeURIComponent(location.hash.slice(1));
  return /^chat:[A-Za-z0-9_.@-]+$/.test(id) ? id : null;
}

window.addEventListener('hashchange', () => {
  const id = roomFromHash();
  if (id) enter(id);
});

// The room list is the state of directory:main. A server that shuts down cleanly closes it;
// it is joined again when the connection is back.
async function watchDirectory() {
  try {
    const room = await client.join(DIRECTORY);
    directory = room;
    room.on('state', renderRooms);
    room.on('left', () => {
      if (directory === room) directory = null;
      renderRooms();
    });
  } catch (err) {
    banner(ui.toasts, `The room list is unavailable: ${err.message}`);
  }
  renderRooms();
}

async function start() {
  showStatus(ui.status, 'connecting');
  try {
    client = await connect('/ws');
  } catch (err) {
    showStatus(ui.status, 'closed');
    banner(ui.toasts, `Cannot reach the Atrium server (${err.message}).`, { action: 'Retry', onAction: () => location.reload() });
    return;
  }
  window.atrium = client; // handy in the console
  showStatus(ui.status, client.status);
  client.on('status', (s) => {
    showStatus(ui.status, s);
    if (s === 'reconnecting') connLine('Reconnecting…');
    else if (ui.conn.textContent === 'Reconnecting…') connLine(s === 'open' && current ? 'Back (rejoined)' : '', 4000);
    if (s === 'closed') banner(ui.toasts, 'Disconnected from the server.', { action: 'Reload', onAction: () => location.reload() });
  });
  client.on('status', (s) => {
    if (s === 'open' && !directory) watchDirectory(); // the list was closed (a server restart)
  });
  await watchDirectory();
  renderMembers();
  const id = roomFromHash();
  if (id) enter(id);
}

start();
