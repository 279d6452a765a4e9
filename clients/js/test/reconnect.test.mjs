// Reconnect against the real server when there is no seat to resume: rooms of type
// `fleeting` hold none (reconnectGrace 0), a restarted server knows no session, so `resume`
// is not_found and the client rejoins its rooms; the Room objects and their listeners stay
// the same. Also a cut socket with queued requests, a clean shutdown, reconnect off.
// Resuming held seats is in resume.test.mjs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '../src/index.js';
import { startServer, uid, until, nextEvent, tappedWebSocket, WebSocket, useServer } from './helpers.mjs';

// An event promise awaited later: if the test fails first, its rejection is not unhandled.
const later = (p) => (p.catch(() => {}), p);
const T = { timeout: 20000 };
const FAST = { minReconnectDelay: 20, maxReconnectDelay: 200 };

describe('reconnect', () => {
  const ctx = useServer({ client: FAST });
  const { open } = ctx;

  it('a cut connection whose seats are gone reconnects and rejoins every room, keeping Room objects and listeners', T, async () => {
    const tap = tappedWebSocket();
    const c = await open({ WebSocket: tap.WebSocket });
    const watcher = await open();
    const id = `fleeting:${uid()}`;
    const secret = `fleeting:${uid()}`;
    await watcher.join(secret, { password: 'pw' });
    const room = await c.join(id);
    const locked = await c.join(secret, { password: 'pw' });
    const wr = await watcher.join(id);
    await until(() => wr.state.online === 2, 'two online');
    const oldId = c.id;
    const oldSession = c.session;
    const events = [];
    room.on('event', (e) => events.push(e));
    const statuses = [];
    c.on('status', (s) => statuses.push(s));

    const first = tap.last();
    first.cut();                                   // no close handshake: a drop
    await until(() => c.status === 'reconnecting', 'reconnecting');
    await until(() => c.status === 'open', 'open again', 5000);
    assert.deepEqual(statuses, ['reconnecting', 'open']);
    assert.notEqual(tap.last(), first, 'a new socket');
    assert.notEqual(c.id, oldId, 'a new connection has a new client id');
    const again = tap.last().sent;
    assert.equal(again[0].op, 'resume', 'resume is tried first');
    const reply = tap.last().received.map((l) => JSON.parse(l)).find((m) => m.op === 'reply' && m.ref === again[0].ref);
    assert.equal(reply?.error?.code, 'not_found', 'no seat was held: the session ended with the drop');
    assert.equal(room.recovered, false);
    assert.notEqual(c.session, oldSession, 'and the new connection\'s session');
    assert.ok(again.some((m) => m.op === 'join' && m.room === secret && m.payload?.password === 'pw'),
      'the rejoin carries the join payload');
    assert.equal(c.room(id), room);
    assert.equal(c.room(secret), locked);
    assert.equal(room.joined, true);
    // The old seat is gone (grace 0: a drop leaves at once) and the new one counts: two, not three.
    // (Leave and rejoin may fall in one patch interval, so the watcher need not see a 1.)
    await until(async () => (await ctx.server.http('GET', `/api/rooms/${id}`)).json.members === 2, 'two members');
    await until(() => wr.state.online === 2, 'two online');
    assert.equal(await room.call('whoami'), c.id);
    await wr.emit('ping', 1);
    await until(() => events.length === 1, 'the listener from before the drop');
    await room.call('push', 'after');
    await until(() => room.state.items.includes('after'), 'patches after the rejoin');
  });

  it('requests in flight at the drop reject with disconnected; requests made while reconnecting wait', T, async () => {
    const tap = tappedWebSocket();
    const c = await open({ WebSocket: tap.WebSocket });
    const room = await c.join(`board:${uid()}`);
    const inflight = room.call('push', 'x');
    tap.last().cut();
    await assert.rejects(inflight, { code: 'disconnected' });
    assert.equal(c.status, 'reconnecting');
    const waiting = room.call('push', 'queued');   // sent once the room is back
    assert.equal(typeof (await waiting), 'number');
    await until(() => room.state.items.includes('queued'), 'the queued call');
  });

  it('a rejoin that is refused fires left(rejected) and drops the room', T, async () => {
    const tap = tappedWebSocket();
    const c = await open({ WebSocket: tap.WebSocket });
    const owner = await open();
    const id = `fleeting:${uid()}`;
    const ro = await owner.join(id, { password: 'right' });
    const room = await c.join(id, { password: 'right' });
    await ro.call('setPassword', 'changed');       // the rejoin's password is wrong now
    const left = nextEvent(room, 'left', 5000);
    tap.last().cut();
    const [reason, message] = await left;
    assert.equal(reason, 'rejected');
    assert.equal(message, 'wrong password');
    await until(() => c.status === 'open', 'open');
    assert.equal(c.room(id), undefined);
  });

  it('survives a server crash and restart on the same port, then rejoins', T, async () => {
    const own = await startServer();
    const c = await connect(own.url, { WebSocket, ...FAST });
    ctx.track(c);
    const id = `board:${uid()}`;
    const room = await c.join(id);
    await room.call('push', 'before');
    await until(() => room.state.items.length === 1, 'the first item');
    const states = [];
    room.on('state', (s) => states.push(structuredClone(s)));
    await own.kill();                               // a crash: no left frames (a clean stop closes rooms)
    await until(() => c.status === 'reconnecting', 'reconnecting');
    const back = await startServer({ port: own.port });
    try {
      await until(() => c.status === 'open', 'open on the new server', 8000);
      // A new server: the room was created again by the rejoin, with fresh state.
      assert.deepEqual(room.state.items, []);
      assert.equal(room.state.online, 1);
      assert.ok(states.length >= 1, 'state fired for the rejoin');
      await room.call('push', 'after');
      await until(() => room.state.items.length === 1, 'a patch from the new server');
    } finally {
      await c.close();
      await back.stop();
    }
  });

  for (const how of ['restart (SIGTERM)', 'kill -9']) {
    it(`a durable room survives a server ${how}: the client resumes its seat, same id, no second join`, T, async () => {
      const data = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-client-durable-'));
      const own = await startServer({ args: ['--data', data] });
      const c = await connect(own.url, { WebSocket, ...FAST });
      ctx.track(c);
      const id = `vault:${uid()}`;
      const room = await c.join(id);
      await room.call('push', 'before');
      await until(() => room.state.items.length === 1, 'the first item');
      const me = c.id;
      const left = [];
      room.on('left', (...a) => left.push(a));
      const resumed = later(nextEvent(room, 'resumed', 8000));
      if (how === 'kill -9') await own.kill();
      else await own.stop();
      await until(() => c.status === 'reconnecting', 'reconnecting');
      const back = await startServer({ port: own.port, args: ['--data', data] });
      try {
        const [{ recovered }] = await resumed;
        assert.equal(typeof recovered, 'boolean');
        await until(() => c.status === 'open', 'open on the new server', 8000);
        assert.equal(c.id, me, 'the same client id');
        assert.equal(c.room(id), room);
        assert.deepEqual(left, []);
        assert.deepEqual(room.state.items, ['before']);
        assert.deepEqual(room.state.log, [`join ${me}`], 'one join, no leave');
        await room.call('push', 'after');
        await until(() => room.state.items.length === 2, 'a patch from the new server');
      } finally {
        await c.close();
        await back.stop();
        fs.rmSync(data, { recursive: true, force: true });
      }
    });
  }

  it('a server that shuts down cleanly closes its rooms: left(closed), nothing to rejoin', T, async () => {
    const own = await startServer();
    const c = await connect(own.url, { WebSocket, ...FAST });
    ctx.track(c);
    const room = await c.join(`board:${uid()}`);
    const left = nextEvent(room, 'left');
    await own.stop();
    assert.equal((await left)[0], 'closed');
    assert.equal(c.rooms.size, 0);
    await c.close();
  });

  it('with reconnect off, a drop closes the client and its rooms fire left(disconnect)', T, async () => {
    const tap = tappedWebSocket();
    const c = await open({ WebSocket: tap.WebSocket, reconnect: false });
    const room = await c.join(`board:${uid()}`);
    const left = nextEvent(room, 'left');
    const status = nextEvent(c, 'status');
    tap.last().cut();
    assert.equal((await left)[0], 'disconnect');
    assert.deepEqual(await status, ['closed']);
    await assert.rejects(room.call('whoami'), { code: 'closed' });
  });
});
