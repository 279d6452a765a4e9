// Room and member lifecycle: kick, close, leave reasons, when a room is destroyed or
// kept, timers and ticks (docs/rooms.md "`self`", and options in "What a room script is
// made of").
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, uid, sleep } from './helpers.mjs';

const T = { timeout: 20000 };

describe('kick and close', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('removes a kicked member: it gets left with reason kicked and the message, onLeave sees kicked', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `bouncer:${uid()}`;
    await a.join(room);
    await b.join(room);
    assert.equal(await a.act(room, 'kick', b.welcome.client, 'behave'), true);
    const left = await b.next({ op: 'left', room });
    assert.deepEqual({ ...left }, { op: 'left', room, reason: 'kicked', message: 'behave' });
    await a.untilView(room, (s) => s.members === 1 && s.kicked.length === 1);
    assert.deepEqual(a.view(room).state.kicked, [b.welcome.client]);
    await b.fails({ op: 'call', room, method: 'roster', args: [] }, 'not_member');
    await a.nothing({ op: 'left' }, 100, 0);
  });

  it('lets a kicked client join again', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `bouncer:${uid()}`;
    await a.join(room);
    await b.join(room);
    await a.act(room, 'kick', b.welcome.client);
    const left = await b.next({ op: 'left', room });
    assert.equal(left.reason, 'kicked');
    const again = await b.join(room);
    assert.equal(again.state.members, 2);
  });

  it('closes a room: every member gets left with reason closed and the room is gone', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `bouncer:${uid()}`;
    await a.join(room);
    await b.join(room);
    await a.act(room, 'close', 'bye');
    for (const x of [a, b]) {
      const left = await x.next({ op: 'left', room });
      assert.equal(left.reason, 'closed');
    }
    const res = await server.http('GET', `/api/rooms/${room}`);
    assert.equal(res.status, 404);
    await b.fails({ op: 'emit', room, event: 'x' }, 'not_member');
    const fresh = await b.join(room);
    assert.deepEqual(fresh.state, { members: 1, kicked: [] }, 'a new room starts from defaultState');
  });
});

describe('leave reasons', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  const cases = [
    ['a leave op', (c, room) => c.leave(room), 'leave'],
    ['a close with 1000', (c) => c.close(1000), 'leave'],
    ['a close with 1001', (c) => c.close(1001), 'leave'],
    ['a dropped connection', (c) => c.terminate(), 'disconnect'],
    ['a close with 4000 (not a clean close)', (c) => c.close(4000), 'disconnect'],
  ];
  for (const [how, act, reason] of cases) {
    it(`runs onLeave with reason ${reason} after ${how}`, T, async () => {
      const [watcher, leaver] = await connectMany(server, 2);
      const room = `tracker:${uid()}`;
      await watcher.join(room);
      await leaver.join(room);
      await watcher.untilView(room, (s) => s.members === 2);
      await act(leaver, room);
      await watcher.untilView(room, (s) => s.lastLeave !== false, 6000);
      assert.deepEqual(watcher.view(room).state.lastLeave, { client: leaver.welcome.client, reason });
      assert.equal(watcher.view(room).state.members, 1);
      assert.equal(watcher.view(room).state.leaves.length, 1);
    });
  }
});

describe('room lifetime', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('destroys an ordinary room when its last member leaves', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `transient:${uid()}`;
    await a.join(room);
    assert.equal((await server.http('GET', `/api/rooms/${room}`)).status, 200);
    await a.leave(room);
    assert.equal((await server.http('GET', `/api/rooms/${room}`)).status, 404);
    assert.deepEqual((await a.join(room)).state, { visits: 1 });
  });

  it('keeps a keepAlive room and its state after the last member left', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `resident:${uid()}`;
    await a.join(room);
    await a.leave(room);
    const res = await server.http('GET', `/api/rooms/${room}`);
    assert.equal(res.status, 200);
    assert.equal(res.json.members, 0);
    assert.deepEqual(res.json.state, { visits: 1 });
    assert.deepEqual((await a.join(room)).state, { visits: 2 });
  });

  it('keeps a room whose onDestroy returns false', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `keeper:${uid()}`;
    await a.join(room);
    await b.join(room);
    await a.leave(room);
    await b.close();
    await sleep(100);
    const res = await server.http('GET', `/api/rooms/${room}`);
    assert.equal(res.status, 200);
    assert.equal(res.json.members, 0);
    assert.deepEqual(res.json.state, { visits: 2 });
    assert.deepEqual((await a.join(room)).state, { visits: 3 });
  });
});

describe('timers and ticks', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('runs a setTimeout callback once, after its delay, as a hook whose changes are patched', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `timers:${uid()}`;
    await a.join(room);
    const t0 = Date.now();
    await a.act(room, 'after', 80, 'first');
    const e = await a.next({ op: 'event', event: 'timer:fired' }, 3000);
    const elapsed = Date.now() - t0;
    assert.deepEqual(e.data, { tag: 'first' });
    assert.ok(elapsed >= 70, `fired after ${elapsed} ms, not before its 80 ms`);
    await a.untilView(room, (s) => s.fired === 1);
    await a.nothing((m) => m.event === 'timer:fired' && m !== e, 250, 0);
    assert.equal((await a.sync(room)).state.fired, 1);
  });

  it('never runs a setTimeout callback that was cancelled', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `timers:${uid()}`;
    await a.join(room);
    await a.act(room, 'after', 150, 'cancelled');
    await a.act(room, 'cancelAfter');
    await a.nothing({ op: 'event', event: 'timer:fired' }, 450, 0);
    assert.equal((await a.sync(room)).state.fired, 0);
  });

  it('repeats a setInterval callback until it is cancelled', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `timers:${uid()}`;
    await a.join(room);
    await a.act(room, 'every', 30);
    await a.untilView(room, (s) => s.beats >= 3, 3000);
    await a.act(room, 'stop');
    const stopped = (await a.sync(room)).state.beats;
    assert.ok(stopped >= 3);
    await sleep(250);
    assert.equal((await a.sync(room)).state.beats, stopped, 'no beat after cancel');
  });

  it('cancels the timers of a room when it is destroyed', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `timers:${uid()}`;
    await a.join(room);
    await a.act(room, 'every', 20);
    await a.act(room, 'after', 100, 'orphan');
    await a.leave(room);
    await sleep(250);
    assert.equal((await server.http('GET', `/api/rooms/${room}`)).status, 404, 'no timer revived the room');
    assert.deepEqual((await a.join(room)).state, { fired: 0, beats: 0 });
    await a.nothing({ op: 'event', event: 'timer:fired' }, 200, 0);
  });

  it('calls onTick about tickRate times a second with dt in seconds', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `ticker:${uid()}`;
    const joined = await a.join(room);
    const t0 = Date.now();
    await sleep(1000);
    const { state } = await a.sync(room);
    const elapsed = (Date.now() - t0) / 1000;
    const ticks = state.ticks - joined.state.ticks;
    assert.ok(ticks >= 8 && ticks <= 30, `${ticks} ticks in ${elapsed.toFixed(2)} s at tickRate 20`);
    assert.ok(state.minDt > 0 && state.minDt <= 0.1, `minDt ${state.minDt}`);
    assert.ok(state.lastDt > 0.02 && state.lastDt < 0.5, `lastDt ${state.lastDt}`);
    assert.ok(a.view(room).patches > 0 || a.log.some((m) => m.op === 'patch' && m.room === room),
      'tick changes reach members as patches');
  });

  it('stops ticking a room once it is destroyed', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `ticker:${uid()}`;
    await a.join(room);
    await sleep(200);
    await a.leave(room);
    await sleep(200);
    assert.equal((await server.http('GET', `/api/rooms/${room}`)).status, 404);
    const fresh = await a.join(room);
    assert.ok(fresh.state.ticks <= 2, `a new room starts counting from 0 (got ${fresh.state.ticks})`);
  });
});
