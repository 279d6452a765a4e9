// The shared counter: rooms/counter.lua. Every tab on the same room id sees the same value;
// the buttons call its actions and the new value arrives as a patch.
import { connect } from '/_atrium/atrium-client.mjs';
import { showStatus, banner } from '/_atrium/common.js';

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'), toasts: $('toasts'), roomId: $('room-id'), value: $('value'), last: $('last'),
  inc: $('inc'), dec: $('dec'), reset: $('reset'), step: $('step'), error: $('error'), mine: $('mine'),
};

// #counter:NAME picks another counter; the default is counter:demo.
const fromHash = decodeURIComponent(location.hash.slice(1));
const ROOM = /^counter:[A-Za-z0-9_.@-]+$/.test(fromHash) ? fromHash : 'counter:demo';
ui.roomId.textContent = ROOM;

let client = null;
let room = null;

function render(state) {
  const text = String(state.value);
  if (ui.value.textContent !== text) {
    ui.value.textContent = text;
    ui.value.classList.remove('bump');
    void ui.value.offsetWidth; // restart the animation
    ui.value.classList.add('bump');
  }
  if (state.lastBy === false) ui.last.textContent = 'Nobody has touched it yet.';
  else ui.last.textContent = `Last change by ${state.lastBy === client.id ? 'you' : state.lastBy}`;
}

function setEnabled(on) {
  for (const b of [ui.inc, ui.dec, ui.reset]) b.disabled = !on;
}

async function act(method, ...args) {
  ui.error.textContent = '';
  try {
    await room.call(method, ...args);
    const mine = await room.call('myBumps');
    ui.mine.textContent = `You changed it ${mine === 1 ? 'once' : `${mine} times`}.`;
  } catch (err) {
    ui.error.textContent = err.message;
  }
}

ui.inc.addEventListener('click', () => act('increment', Number(ui.step.value)));
ui.dec.addEventListener('click', () => act('decrement', Number(ui.step.value)));
ui.reset.addEventListener('click', () => act('reset'));

async function start() {
  try {
    client = await connect('/ws');
  } catch (err) {
    showStatus(ui.status, 'closed');
    banner(ui.toasts, `Cannot reach the Atrium server (${err.message}).`, { action: 'Retry', onAction: () => location.reload() });
    return;
  }
  window.atrium = client;
  showStatus(ui.status, client.status);
  client.on('status', (s) => {
    showStatus(ui.status, s);
    setEnabled(s === 'open' && room?.joined);
  });
  // A server that shuts down cleanly closes the counter: join it again once reconnected.
  client.on('status', (s) => {
    if (s === 'open' && !room?.joined) joinCounter();
  });
  await joinCounter();
}

async function joinCounter() {
  let r;
  try {
    r = await client.join(ROOM);
  } catch (err) {
    banner(ui.toasts, `Could not join ${ROOM}: ${err.message}`, { action: 'Retry', onAction: joinCounter });
    return;
  }
  room = r;
  render(r.state);
  setEnabled(true);
  r.on('state', render);
  r.on('left', (reason, message) => {
    setEnabled(false);
    if (reason !== 'closed') banner(ui.toasts, `You left the counter (${reason}${message ? `: ${message}` : ''}).`, { action: 'Join again', onAction: joinCounter });
  });
}

start();
