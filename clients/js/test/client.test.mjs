// The client against the real server (test rooms in test/rooms/): joins and rejections,
// actions, events, patches that keep room.state equal to the server's, server-side joins,
// kicks and closes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AtriumError } from '../src/index.js';
import { uid, until, nextEvent, tappedWebSocket, WebSocket, sleep, useServer } from './helpers.mjs';

const T = { timeout: 15000 };

describe('atrium-client against atrium serve', () => {
  const ctx = useServer();
  const { open } = ctx;

  it('connects and takes its client id from welcome', T, async () => {
    const c = await open();
    assert.match(c.id, /^c\d+$/);
    assert.equal(c.status, 'open');
    assert.equal(typeof c.session, 'string');
    assert.ok(c.heartbeat > 0);
    assert.ok((await c.ping()) >= 0);
  });

  it('connects to the http origin (no path): the client adds /ws', T, async () => {
    const c = await open({}, ctx.server.origin);
    assert.equal(c.url, `${ctx.server.url}`);
    assert.equal(c.status, 'open');
    assert.equal(await c.request('ping'), 'pong');
  });

  it('joins a room and gets its state and seq', T, async () => {
    const c = await open();
    const id = `board:${uid()}`;
    const room = await c.join(id);
    assert.equal(room.id, id);
    assert.equal(typeof room.seq, 'number');
    assert.deepEqual(room.state, { items: [], tags: {}, online: 1, title: id.split(':')[1] });
    assert.equal(c.room(id), room);
    assert.equal(room.joined, true);
  });

  it('a wrong password is join_rejected with the reason; the right one gets in', T, async () => {
    const [owner, guest] = [await open(), await open()];
    const id = `board:${uid()}`;
    await owner.join(id, { password: 'sesame' });
    const err = await guest.join(id, { password: 'guess' }).catch((e) => e);
    assert.ok(err instanceof AtriumError, String(err));
    assert.equal(err.code, 'join_rejected');
    assert.equal(err.message, 'wrong password');
    assert.equal(guest.room(id), undefined);
    const room = await guest.join(id, { password: 'sesame' });
    assert.equal(room.state.online, 2);
  });

  it('rejects with the server codes: bad_request, not_member, unknown_method, script_error, server_join_only', T, async () => {
    const c = await open();
    await assert.rejects(c.join('bad id'), { code: 'bad_request' });
    const id = `board:${uid()}`;
    const room = await c.join(id);
    await assert.rejects(room.call('nope'), { code: 'unknown_method' });
    // A script's error says where in the script it was raised.
    await assert.rejects(room.call('fail', 'on purpose'), (e) => e.code === 'script_error' && /on purpose/.test(e.message)
      && /^rooms\/board\.lua:\d+$/.test(e.where));
    await assert.rejects(room.call('nope'), (e) => e.code === 'unknown_method' && e.where === undefined);
    await assert.rejects(c.join(id), { code: 'already_member' });
    await assert.rejects(c.join(`vip:${uid()}`), { code: 'server_join_only' });
    await room.leave();
    await assert.rejects(room.call('whoami'), { code: 'not_member' });
  });

  it('calls actions and resolves with their results', T, async () => {
    const c = await open();
    const room = await c.join(`board:${uid()}`);
    assert.equal(await room.call('whoami'), c.id);
    assert.equal(await room.call('push', { text: 'a' }), 1);
    assert.equal(await room.call('push', 'b'), 2);
    await until(() => room.state.items.length === 2, 'the patch');
    assert.deepEqual(room.state.items, [{ text: 'a' }, 'b']);
  });

  it('emits events; members get them with from', T, async () => {
    const [a, b] = [await open(), await open()];
    const id = `board:${uid()}`;
    const ra = await a.join(id);
    const rb = await b.join(id);
    const got = nextEvent(rb, 'event');
    await ra.emit('wave', { hi: 1 });
    const [ev] = await got;
    assert.equal(ev.event, 'wave');
    assert.deepEqual(ev.data, { from: a.id, data: { hi: 1 } });
    assert.equal(ev.from, undefined, 'a script emit has no from');
  });

  it('patches keep room.state equal to the state sync returns, for every member', T, async () => {
    const [a, b] = [await open(), await open()];
    const id = `board:${uid()}`;
    const ra = await a.join(id);
    const rb = await b.join(id);
    const opsSeen = [];
    rb.on('state', (state, ops) => opsSeen.push(ops));
    const work = [];
    for (let i = 0; i < 40; i++) {
      const who = i % 2 ? ra : rb;
      work.push(who.call('push', { i, nested: { list: [i, i + 1] } }));
      if (i % 5 === 0) work.push(who.call('set', `k/${i}~x`, { v: i }));
      if (i % 7 === 0) work.push(who.call('insert', 1, `ins${i}`));
      if (i % 9 === 0) work.push(who.call('removeAt', 1));
      if (i % 11 === 0) work.push(who.call('title', `t${i}`));
      if (i % 4 === 0) await sleep(15); // spread over several patch intervals
    }
    await Promise.all(work);
    const expected = await ra.call('whoami').then(() => ctx.server.http('GET', `/api/rooms/${id}`));
    await until(() => ra.seq === expected.json.seq && rb.seq === expected.json.seq, `both at seq ${expected.json.seq}`);
    assert.deepEqual(ra.state, expected.json.state);
    assert.deepEqual(rb.state, expected.json.state);
    // And what sync answers is what the patches built (sync replaces: compare a copy).
    const before = structuredClone(rb.state);
    const synced = await rb.sync();
    assert.deepEqual(synced, before);
    assert.ok(opsSeen.some((ops) => Array.isArray(ops) && ops.length > 0), 'state fired with ops');
    assert.ok(opsSeen.some((ops) => ops && ops.some((o) => o.path.includes('~1') && o.path.includes('~0'))),
      'pointer escapes were exercised');
  });

  it('a sequence gap triggers sync and the state comes back right', T, async () => {
    const tap = tappedWebSocket();
    const c = await open({ WebSocket: tap.WebSocket });
    const other = await open();
    const id = `board:${uid()}`;
    const room = await c.join(id);
    const ro = await other.join(id);
    await until(() => room.state.online === 2, 'the second member');
    let dropped = 0;
    tap.last().drop = (msg) => {
      if (msg.op === 'patch' && msg.room === id && dropped === 0) {
        dropped += 1;
        return true;
      }
      return false;
    };
    await ro.call('push', 'lost');     // its patch is dropped: the client does not see it
    await sleep(120);                  // past the patch interval
    await ro.call('push', 'after');    // this patch shows the gap
    await until(() => tap.last().sent.some((m) => m.op === 'sync' && m.room === id), 'a sync request');
    await until(() => room.state.items.length === 2, 'both items');
    assert.deepEqual(room.state.items, ['lost', 'after']);
    assert.equal(dropped, 1);
    const truth = await ctx.server.http('GET', `/api/rooms/${id}`);
    await until(() => room.seq === truth.json.seq, 'the server seq');
    assert.deepEqual(room.state, truth.json.state);
  });

  it('server-side placement from an action fires client joined with a working Room', T, async () => {
    const c = await open();
    const door = await c.join(`doorman:${uid()}`);
    const vip = `vip:${uid()}`;
    const joined = nextEvent(c, 'joined');
    const res = await door.call('seat', vip, 'gold');
    assert.deepEqual(res, { ok: true });
    const [room] = await joined;
    assert.equal(room.id, vip);
    assert.equal(room.placed, true);
    assert.deepEqual(room.state.guests, [c.id]);
    assert.equal(c.room(vip), room);
    assert.equal(await room.call('whoami'), c.id);
    const refused = await door.call('seat', `vip:${uid()}`, 'tin');
    assert.deepEqual(refused, { ok: false, reason: 'no ticket' });
  });

  it('server-side placement over HTTP (POST /api/rooms/:id/join) fires joined too', T, async () => {
    const c = await open();
    const vip = `vip:${uid()}`;
    const joined = nextEvent(c, 'joined');
    const res = await ctx.server.http('POST', `/api/rooms/${vip}/join`, { client: c.id, payload: { ticket: 'gold' } });
    assert.equal(res.status, 200, res.text);
    const [room] = await joined;
    assert.equal(room.id, vip);
    assert.deepEqual(room.state, { guests: [c.id] });
  });

  it('a kicked member gets left with reason and message; a closed room gives closed', T, async () => {
    const [a, b] = [await open(), await open()];
    const id = `board:${uid()}`;
    const ra = await a.join(id);
    const rb = await b.join(id);
    const leftB = nextEvent(rb, 'left');
    await ra.call('kick', b.id, 'too loud');
    assert.deepEqual(await leftB, ['kicked', 'too loud']);
    assert.equal(rb.joined, false);
    assert.equal(b.room(id), undefined);
    const leftA = nextEvent(ra, 'left');
    await ra.call('close');
    assert.deepEqual((await leftA)[0], 'closed');
    assert.equal(a.room(id), undefined);
  });

  it('leave fires left(leave) and the other members see the count drop', T, async () => {
    const [a, b] = [await open(), await open()];
    const id = `board:${uid()}`;
    const ra = await a.join(id);
    const rb = await b.join(id);
    await until(() => ra.state.online === 2, 'two online');
    const left = nextEvent(rb, 'left');
    await rb.leave();
    assert.deepEqual(await left, ['leave', undefined]);
    await until(() => ra.state.online === 1, 'one online');
    await rb.leave(); // a second leave is a no-op
  });

  it('close() leaves cleanly: rooms fire left, the server runs onLeave at once', T, async () => {
    const [a, b] = [await open(), await open()];
    const id = `board:${uid()}`;
    const ra = await a.join(id);
    const rb = await b.join(id);
    await until(() => ra.state.online === 2, 'two online');
    const statuses = [];
    b.on('status', (s) => statuses.push(s));
    const left = nextEvent(rb, 'left');
    await b.close();
    assert.deepEqual((await left)[0], 'leave');
    assert.deepEqual(statuses, ['closed']);
    await until(() => ra.state.online === 1, 'one online');
    await assert.rejects(rb.call('whoami'), { code: 'closed' });
  });
});
