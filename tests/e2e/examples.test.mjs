// The example rooms users copy from (rooms/ at the top of the repository), driven the way
// docs/rooms.md describes them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, uid, sleep, exampleRooms } from './helpers.mjs';

const T = { timeout: 30000 };

function directoryEntry(client, id) {
  return client.view('directory:main')?.state.rooms.find((r) => r.id === id);
}

describe('example rooms', () => {
  let server;
  before(async () => { server = await startServer({ rooms: exampleRooms }); });
  after(cleanup);

  it('loads every example room without an error', T, async () => {
    const status = await server.http('GET', '/api/status');
    const names = status.json.types.map((t) => t.name).sort();
    for (const name of ['arena', 'chat', 'counter', 'directory', 'pingpong']) assert.ok(names.includes(name), name);
    for (const t of status.json.types) assert.ok(!t.error, `${t.name}: ${t.error}`);
  });

  it('chat: the creator password-protects a room, later joins must match, messages reach every member', T, async () => {
    const [alice, bob, eve] = await connectMany(server, 3);
    const room = `chat:${uid()}`;
    const created = await alice.join(room, { password: 'open sesame', title: 'Secret plans' });
    assert.deepEqual(created.state, { title: 'Secret plans', messages: [], online: 1, isPrivate: true });
    const err = await eve.fails({ op: 'join', room, payload: { password: 'guess' } }, 'join_rejected');
    assert.equal(err.message, 'wrong password');
    await bob.join(room, { password: 'open sesame' });

    const sent = await alice.act(room, 'send', '  hello bob  ');
    assert.equal(sent.text, 'hello bob');
    assert.equal(sent.user, alice.welcome.client);
    const e = await bob.next({ op: 'event', event: 'chat:message' });
    assert.deepEqual(e.data, sent);
    await bob.untilView(room, (s) => s.messages.length === 1 && s.online === 2);
    assert.deepEqual(bob.view(room).state.messages, [sent]);
  });

  it('chat: rejects empty, oversized and non-string messages with script_error', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `chat:${uid()}`;
    await a.join(room);
    for (const text of ['', '   ', 'x'.repeat(501), 42]) {
      const err = await a.fails({ op: 'call', room, method: 'send', args: [text] }, 'script_error');
      assert.match(err.where, /^rooms\/chat\.lua:\d+$/);
      assert.doesNotMatch(err.message, /\.lua:/);
    }
    assert.deepEqual((await a.sync(room)).state.messages, []);
  });

  it('chat: keeps only the last 100 messages', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `chat:${uid()}`;
    await a.join(room);
    await Promise.all(Array.from({ length: 105 }, (_, i) => a.act(room, 'send', `m${i + 1}`)));
    const { state } = await a.sync(room);
    assert.equal(state.messages.length, 100);
    assert.equal(state.messages[0].text, 'm6');
    assert.equal(state.messages[99].text, 'm105');
    await a.untilView(room, (s) => s.messages.length === 100 && s.messages[99].text === 'm105');
  });

  it('directory: lists chat rooms with title, member count and privacy, and drops them when destroyed', T, async () => {
    const [watcher, a, b] = await connectMany(server, 3);
    await watcher.join('directory:main');
    const room = `chat:${uid()}`;
    await a.join(room, { title: 'Open room' });
    await watcher.untilView('directory:main', () => directoryEntry(watcher, room)?.members === 1);
    assert.deepEqual(directoryEntry(watcher, room), { id: room, title: 'Open room', members: 1, isPrivate: false });
    await b.join(room);
    await watcher.untilView('directory:main', () => directoryEntry(watcher, room)?.members === 2);
    await b.leave(room);
    await watcher.untilView('directory:main', () => directoryEntry(watcher, room)?.members === 1);
    await a.leave(room);
    await watcher.untilView('directory:main', () => directoryEntry(watcher, room) === undefined);
    const priv = `chat:${uid()}`;
    await a.join(priv, { password: 'pw' });
    await watcher.untilView('directory:main', () => directoryEntry(watcher, priv)?.isPrivate === true);
    assert.equal(directoryEntry(watcher, priv).title, priv.split(':')[1], 'the title defaults to the instance');
  });

  it('directory: clients cannot call its plain methods', T, async () => {
    const [a] = await connectMany(server, 1);
    await a.join('directory:main');
    await a.fails({ op: 'call', room: 'directory:main', method: 'register', args: ['chat:fake', {}] }, 'unknown_method');
    const found = await a.act('directory:main', 'find', 'fake');
    assert.deepEqual(found, []);
  });

  it('chat: setPassword over the HTTP API makes an open room private', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `chat:${uid()}`;
    await a.join(room);
    const res = await server.http('POST', `/api/rooms/${room}/call/setPassword`, { args: ['later'] });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { result: true });
    await a.untilView(room, (s) => s.isPrivate === true);
    await b.fails({ op: 'join', room }, 'join_rejected');
    await b.join(room, { password: 'later' });
  });

  it('counter: increments, decrements and resets, validating the step', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `counter:${uid()}`;
    await a.join(room);
    await b.join(room);
    assert.equal(await a.act(room, 'increment'), 1);
    assert.equal(await b.act(room, 'increment', 5), 6);
    assert.equal(await a.act(room, 'decrement', 2), 4);
    for (const bad of [0, 101, 1.5, 'three', -1]) {
      await a.fails({ op: 'call', room, method: 'increment', args: [bad] }, 'script_error');
    }
    await b.untilView(room, (s) => s.value === 4 && s.lastBy === a.welcome.client);
    assert.equal(await a.act(room, 'myBumps'), 2);
    assert.equal(await b.act(room, 'myBumps'), 1);
    assert.equal(await b.act(room, 'reset'), 0);
    const { state } = await a.sync(room);
    assert.deepEqual(state, { value: 0, lastBy: b.welcome.client });
  });

  it('pingpong: ping answers pong with a count, and an echo event comes back to its sender only', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `pingpong:${uid()}`;
    await a.join(room);
    await b.join(room);
    assert.deepEqual(await a.act(room, 'ping'), { reply: 'pong', count: 1 });
    assert.deepEqual(await b.act(room, 'ping'), { reply: 'pong', count: 2 });
    await a.ok({ op: 'emit', room, event: 'echo', data: { hello: 'you' } });
    const e = await a.next({ op: 'event', event: 'echo' });
    assert.deepEqual(e.data, { hello: 'you' });
    await b.nothing({ op: 'event' }, 150, 0);
    await a.fails({ op: 'emit', room, event: 'other', data: 1 }, 'script_error');
  });

  it('arena: moves players by their intent on each tick and clamps them to the arena', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `arena:${uid()}`;
    const joined = await a.join(room, { name: 'ann' });
    await b.join(room);
    const me = String(a.welcome.client);
    const start = joined.state.players[me];
    assert.equal(start.name, 'ann');
    assert.equal(joined.state.width, 800);
    assert.equal(joined.state.height, 600);
    assert.deepEqual(await a.act(room, 'move', 1, 0), { vx: 200, vy: 0 });
    await sleep(300);
    const { state } = await a.sync(room);
    const moved = state.players[me];
    assert.ok(moved.x > start.x || moved.x === 800, `x went from ${start.x} to ${moved.x}`);
    assert.equal(moved.y, start.y);
    await b.untilView(room, (s) => s.players[me].x === 800, 8000);
    await sleep(200);
    assert.equal((await a.sync(room)).state.players[me].x, 800, 'clamped at the right edge');
    await a.fails({ op: 'call', room, method: 'move', args: ['left', 0] }, 'script_error');
  });

  it('arena: admits 16 players and answers the 17th with room_full; a leaver disappears', T, async () => {
    const clients = await connectMany(server, 17);
    const room = `arena:${uid()}`;
    for (const c of clients.slice(0, 16)) await c.join(room);
    await clients[16].fails({ op: 'join', room }, 'room_full');
    await clients[0].leave(room);
    await clients[1].untilView(room, (s) => !(String(clients[0].welcome.client) in s.players)
      && Object.keys(s.players).length === 15);
  });
});
