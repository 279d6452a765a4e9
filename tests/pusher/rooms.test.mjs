// Channels that are rooms (docs/pusher.md): Laravel Echo on pusher-js subscribes to
// presence-team.N, which the repository's own rooms/team.lua serves as room team:N, beside a
// native member on /ws speaking through atrium-client (clients/js). The `pusher` SDK plays
// the Laravel back end: /broadcasting/auth and broadcast().
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import Echo from 'laravel-echo';
import { connect as atriumConnect } from '../../clients/js/src/index.js';
import {
  Pusher, startAtrium, makeApp, sdk, clientOptions, until, uid, sleep, authServer, onCleanup, cleanup, repo,
  rawHttp, RawClient,
} from './helpers.mjs';

const app = makeApp('911');
let server;
let api;
let auth;
const people = new Map();           // socket_id -> {id, name}

before(async () => {
  const rooms = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-pusher-team-'));
  onCleanup(() => fs.rmSync(rooms, { recursive: true, force: true }));
  fs.copyFileSync(path.join(repo, 'rooms', 'team.lua'), path.join(rooms, 'team.lua'));
  server = await startAtrium({ apps: [app], rooms });
  api = sdk(server, app);
  auth = await authServer(api, {
    presence: (socketId) => {
      const who = people.get(socketId);
      return { user_id: who.id, user_info: { name: who.name } };
    },
  });
});
after(cleanup);

async function echo(person) {
  const e = new Echo({
    broadcaster: 'pusher', key: app.key, Pusher, ...clientOptions(server), authEndpoint: auth.endpoint,
  });
  onCleanup(() => e.disconnect());
  await until(() => e.connector.pusher.connection.state === 'connected', 5000, 'Echo to connect');
  people.set(e.socketId(), person);
  return e;
}

// Echo's join() once here() fired: [channel, members here].
async function joined(e, name) {
  let here = null;
  const ch = e.join(name).here((users) => { here = users; });
  await until(() => here !== null, 5000, `${name} here()`);
  return [ch, here];
}

// A native member of the room over /ws, with every room event it hears.
async function native(room) {
  const client = await atriumConnect(`http://127.0.0.1:${server.port}`, { WebSocket });
  onCleanup(() => client.close());
  const r = await client.join(room);
  const events = [];
  r.on('event', (ev) => events.push(ev));
  return { client, room: r, events };
}

const call = (room, method, args) => rawHttp(`http://127.0.0.1:${server.port}/api/rooms/${room}/call/${method}`, {
  method: 'POST', body: JSON.stringify({ args }), headers: { 'content-type': 'application/json' },
});

describe('channels that are rooms (rooms/team.lua)', { concurrency: true }, () => {
  it('Echo join() is a room join: onJoin sees ctx.pusher, native members see who is here', async () => {
    const n = uid('t');
    const nat = await native(`team:${n}`);
    const ada = await echo({ id: `ada-${n}`, name: 'Ada' });
    const [, here] = await joined(ada, `team.${n}`);
    assert.deepEqual(here, [{ name: 'Ada' }]);
    await until(() => nat.room.state.online.length === 2, 4000, 'the native member to see Ada');
    const entry = nat.room.state.online.find((m) => m.userId === `ada-${n}`);
    assert.equal(entry.name, 'Ada');
    // Leaving the channel leaves the room.
    ada.leave(`team.${n}`);
    await until(() => nat.room.state.online.length === 1, 4000, 'Ada to leave the room');
  });

  it('whispers pass through onEvent: muted typing is dropped, messages rewritten, natives both ways', async () => {
    const n = uid('t');
    const nat = await native(`team:${n}`);
    const ada = await echo({ id: `ada-${n}`, name: 'Ada' });
    const bob = await echo({ id: `bob-${n}`, name: 'Bob' });
    const [chAda] = await joined(ada, `team.${n}`);
    const [chBob] = await joined(bob, `team.${n}`);
    const typingAtBob = [];
    const messagesAtBob = [];
    const typingAtAda = [];
    chBob.listenForWhisper('typing', (d) => typingAtBob.push(d));
    chBob.listenForWhisper('message', (d) => messagesAtBob.push(d));
    chAda.listenForWhisper('typing', (d) => typingAtAda.push(d));

    chAda.whisper('typing', { on: true });
    await until(() => typingAtBob.length === 1, 4000, 'Bob to see Ada typing');
    await until(() => nat.events.some((e) => e.event === 'client-typing'), 4000, 'the native member to see it');
    assert.deepEqual(nat.events.find((e) => e.event === 'client-typing').data, { on: true });

    // The back end mutes Ada: her typing reaches nobody; Bob's still reaches her.
    const muted = await call(`team:${n}`, 'mute', [`ada-${n}`]);
    assert.equal(muted.status, 200, muted.text);
    chAda.whisper('typing', { on: true });
    chBob.whisper('typing', { on: true });
    await until(() => typingAtAda.length === 1, 4000, 'Ada to see Bob typing');
    await sleep(200);
    assert.equal(typingAtBob.length, 1, 'a muted whisper was delivered');

    // A message is rewritten: trimmed, and signed by the server, whatever the sender said.
    chAda.whisper('message', { text: '  hello  ', by: 'someone-else' });
    await until(() => messagesAtBob.length === 1, 4000, 'Bob to get the message');
    assert.equal(messagesAtBob[0].text, 'hello');
    assert.equal(messagesAtBob[0].by, `ada-${n}`);
    assert.equal(typeof messagesAtBob[0].at, 'number');

    // A native member's event reaches the Echo members as a whisper.
    await nat.room.emit('client-typing', { on: 'native' });
    await until(() => typingAtBob.some((d) => d.on === 'native'), 4000, 'Bob to see the native member type');
    await until(() => typingAtAda.some((d) => d.on === 'native'), 4000, 'Ada to see it');
  });

  it('broadcast() reaches native members; a ban refuses the join through Echo .error()', async () => {
    const n = uid('t');
    const nat = await native(`team:${n}`);
    const eve = await echo({ id: `eve-${n}`, name: 'Eve' });
    const [chEve] = await joined(eve, `team.${n}`);
    const atEve = [];
    const leftEve = [];
    chEve.listen('.score.changed', (d) => atEve.push(d));
    chEve.listen('.atrium:left', (d) => leftEve.push(d));

    await api.trigger(`presence-team.${n}`, 'score.changed', { score: 3 });
    await until(() => atEve.length === 1, 4000, 'Eve to get the broadcast');
    assert.deepEqual(atEve[0], { score: 3 });
    await until(() => nat.events.some((e) => e.event === 'score.changed'), 4000, 'the native member to get it');
    assert.deepEqual(nat.events.find((e) => e.event === 'score.changed').data, { score: 3 });

    // Banned while here: kicked (atrium:left), and refused when she comes back.
    const banned = await call(`team:${n}`, 'ban', [`eve-${n}`]);
    assert.equal(banned.status, 200, banned.text);
    await until(() => leftEve.length === 1, 4000, 'Eve to hear she was removed');
    assert.deepEqual(leftEve[0], { reason: 'kicked', message: 'banned from this team' });
    await until(() => nat.room.state.online.length === 1, 4000, 'Eve to be gone from the room');

    const again = await echo({ id: `eve-${n}`, name: 'Eve' });
    const error = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no .error() within 5 s')), 5000);
      again.join(`team.${n}`).error((e) => { clearTimeout(timer); resolve(e); });
    });
    assert.equal(error.type, 'AuthError');
    assert.equal(error.error, 'banned from this team');
    assert.equal(error.status, 403);
  });

  it('a channel whose type has no script is a plain Pusher channel', async () => {
    const n = uid('x');
    const c = await RawClient.open(server, app.key);
    await c.subscribe(`lobby.${n}`);
    const rooms = await rawHttp(`http://127.0.0.1:${server.port}/api/rooms`);
    assert.equal(rooms.status, 200);
    assert.ok(!rooms.text.includes(n), `a room was made for lobby.${n}: ${rooms.text}`);
  });
});
