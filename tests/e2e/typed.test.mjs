// Typed rooms: joins run onCreate/onJoin server-side and may be rejected; membership
// limits; server-side placement; what a client may call (docs/protocol.md, docs/rooms.md).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, uid } from './helpers.mjs';

const T = { timeout: 20000 };

describe('typed rooms', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('returns {room, seq, state} with the script defaultState changed by onCreate and onJoin', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `secret:${uid()}`;
    const result = await a.join(room, { password: `pw-${uid()}` });
    assert.equal(result.room, room);
    assert.equal(typeof result.seq, 'number');
    assert.deepEqual(result.state, { members: 1, locked: true });
  });

  it('gives onJoin an empty payload object when the join carries none', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `secret:${uid()}`;
    // onJoin reads ctx.payload.password: a nil payload would be a script_error.
    const result = await a.join(room);
    assert.deepEqual(result.state, { members: 1, locked: false });
  });

  it('rejects a join with join_rejected carrying the reason onJoin gave', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `secret:${uid()}`;
    const password = `pw-${uid()}`;
    await a.join(room, { password });
    const err = await b.fails({ op: 'join', room, payload: { password: 'guess' } }, 'join_rejected');
    assert.equal(err.message, 'wrong password');
    const err2 = await b.fails({ op: 'join', room }, 'join_rejected');
    assert.equal(err2.message, 'wrong password');
    const ok = await b.join(room, { password });
    assert.deepEqual(ok.state, { members: 2, locked: true });
  });

  it('lets a rejected client emit nothing, since it is not a member', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `secret:${uid()}`;
    await a.join(room, { password: 'x' });
    await b.fails({ op: 'join', room, payload: { password: 'y' } }, 'join_rejected');
    await b.fails({ op: 'call', room, method: 'isLocked', args: [] }, 'not_member');
  });

  it('rolls back what a rejecting onJoin changed, so members see no patch', T, async () => {
    const [a, b, c] = await connectMany(server, 3);
    const room = `gate:${uid()}`;
    const first = await a.join(room, { letMeIn: true });
    assert.deepEqual(first.state, { attempts: 1, admitted: [a.welcome.client] });

    const err = await b.fails({ op: 'join', room, payload: { letMeIn: false } }, 'join_rejected');
    assert.equal(err.message, 'not on the list');
    const synced = await a.sync(room);
    assert.equal(synced.seq, first.seq, 'a rejected join must not advance seq');
    assert.deepEqual(synced.state, first.state);
    assert.equal(a.log.filter((m) => m.op === 'patch' && m.room === room && m.seq > first.seq).length, 0,
      'no patch for a rejected join');

    const third = await c.join(room, { letMeIn: true });
    assert.deepEqual(third.state, { attempts: 2, admitted: [a.welcome.client, c.welcome.client] });
  });

  it('discards a room that was created only for a rejected join', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `gate:${uid()}`;
    await a.fails({ op: 'join', room, payload: {} }, 'join_rejected');
    const res = await server.http('GET', `/api/rooms/${room}`);
    assert.equal(res.status, 404, res.text);
    assert.equal(res.json?.error?.code, 'not_found');
    const list = await server.http('GET', '/api/rooms');
    assert.ok(!list.json.rooms.some((r) => r.id === room), 'discarded room is not listed');
    const again = await a.join(room, { letMeIn: true });
    assert.deepEqual(again.state, { attempts: 1, admitted: [a.welcome.client] });
  });

  it('answers a join past maxMembers with room_full and admits again after a leave', T, async () => {
    const [a, b, c] = await connectMany(server, 3);
    const room = `pair:${uid()}`;
    await a.join(room);
    await b.join(room);
    await c.fails({ op: 'join', room }, 'room_full');
    await b.leave(room);
    const r = await c.join(room);
    assert.deepEqual(r.state, { members: 2 });
  });

  it('answers a client join of a serverJoinOnly room with server_join_only', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `vip:${uid()}`;
    const err = await a.fails({ op: 'join', room, payload: { ticket: 'gold' } }, 'server_join_only');
    assert.equal(err.message, 'room requires server-side join');
  });

  it('places a client with atrium.room(id):join: it gets joined with the state before the reply', T, async () => {
    const [a] = await connectMany(server, 1);
    const placer = `placer:${uid()}`;
    const vip = `vip:${uid()}`;
    await a.join(placer);
    const mark = a.log.length;
    const result = await a.act(placer, 'place', vip, { ticket: 'gold' });
    assert.deepEqual(result, { ok: true });
    const frames = a.log.slice(mark);
    const joinedAt = frames.findIndex((m) => m.op === 'joined' && m.room === vip);
    const replyAt = frames.findIndex((m) => m.op === 'reply');
    assert.ok(joinedAt >= 0, 'a joined frame arrived');
    assert.ok(joinedAt < replyAt, 'joined comes before the reply of the request that caused it');
    const joined = frames[joinedAt];
    assert.equal(typeof joined.seq, 'number');
    assert.deepEqual(joined.state, { guests: [a.welcome.client] });
    assert.equal(await a.act(vip, 'whoami'), a.welcome.client, 'the placed client is a member');
  });

  it('reports a rejection of a server-side placement to the placing script, with no joined frame', T, async () => {
    const [a] = await connectMany(server, 1);
    const placer = `placer:${uid()}`;
    const vip = `vip:${uid()}`;
    await a.join(placer);
    const result = await a.act(placer, 'place', vip, { ticket: 'paper' });
    assert.deepEqual(result, { ok: false, reason: 'no ticket' });
    assert.equal(a.log.filter((m) => m.op === 'joined').length, 0);
    await a.fails({ op: 'call', room: vip, method: 'whoami', args: [] }, 'not_member');
  });

  it('lets a script read another room public state through atrium.room(id).state', T, async () => {
    const [a] = await connectMany(server, 1);
    const placer = `placer:${uid()}`;
    const vip = `vip:${uid()}`;
    await a.join(placer);
    await a.act(placer, 'place', vip, { ticket: 'gold' });
    assert.deepEqual(await a.act(placer, 'peek', vip), { guests: [a.welcome.client] });
  });

  it('answers a call of a name that is not in actions with unknown_method and runs nothing', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `secret:${uid()}`;
    const joined = await a.join(room);
    await a.fails({ op: 'call', room, method: 'nope', args: [] }, 'unknown_method');
    // A plain method and a hook are server-side only.
    await a.fails({ op: 'call', room, method: 'setPassword', args: ['mine'] }, 'unknown_method');
    await a.fails({ op: 'call', room, method: 'onJoin', args: [{}] }, 'unknown_method');
    await a.fails({ op: 'call', room, method: 'onDestroy', args: [] }, 'unknown_method');
    const synced = await a.sync(room);
    assert.deepEqual(synced.state, joined.state);
    assert.equal(await a.act(room, 'isLocked'), false);
  });

  it('returns what an action returned as the reply result', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `secret:${uid()}`;
    await a.join(room, { password: 'p' });
    assert.equal(await a.act(room, 'isLocked'), true);
  });

  it('answers an emit into a typed room without onEvent with not_allowed', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `pair:${uid()}`;
    await a.join(room);
    await b.join(room);
    await a.fails({ op: 'emit', room, event: 'hi', data: 1 }, 'not_allowed');
    await b.nothing({ op: 'event' }, 200, 0);
  });

  it('answers not_member for call, emit and leave on a typed room the client is not in', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `echo:${uid()}`;
    await a.join(room);
    await b.fails({ op: 'call', room, method: 'announce', args: ['x'] }, 'not_member');
    await b.fails({ op: 'emit', room, event: 'all', data: { text: 'x' } }, 'not_member');
    await b.fails({ op: 'leave', room }, 'not_member');
    await a.nothing({ op: 'event' }, 150, 0);
  });

  it('runs onEvent for an emit into a typed room: emit with except, send to one, emit to all', T, async () => {
    const [a, b, c] = await connectMany(server, 3);
    const room = `echo:${uid()}`;
    for (const x of [a, b, c]) await x.join(room);

    await a.ok({ op: 'emit', room, event: 'shout', data: { text: 'hey' } });
    for (const x of [b, c]) {
      const e = await x.next({ op: 'event', event: 'shouted' });
      assert.deepEqual(e.data, { text: 'hey', by: a.welcome.client });
    }
    assert.equal(a.log.filter((m) => m.event === 'shouted').length, 0, 'except skips the sender');

    await a.ok({ op: 'emit', room, event: 'whisper', data: { to: c.welcome.client, text: 'psst' } });
    const w = await c.next({ op: 'event', event: 'whispered' });
    assert.deepEqual(w.data, { text: 'psst', by: a.welcome.client });

    await b.ok({ op: 'emit', room, event: 'all', data: { text: 'everyone' } });
    for (const x of [a, b, c]) {
      const e = await x.next({ op: 'event', event: 'all' });
      assert.deepEqual(e.data, { text: 'everyone', by: b.welcome.client });
    }
    await Promise.all([a, b].map((x) => x.nothing({ op: 'event', event: 'whispered' }, 150, 0)));
  });

  it('answers an emit whose onEvent raised with script_error', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `echo:${uid()}`;
    await a.join(room);
    const err = await a.fails({ op: 'emit', room, event: 'no-such-event', data: {} }, 'script_error');
    assert.match(err.where, /echo\.lua:\d+$/);
    assert.match(err.message, /^unknown event no-such-event/);
  });

  it('iterates members with self:members() and counts them with self:memberCount()', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `bouncer:${uid()}`;
    await a.join(room);
    await b.join(room);
    const roster = await a.act(room, 'roster');
    assert.equal(roster.count, 2);
    assert.deepEqual([...roster.clients].sort(), [a.welcome.client, b.welcome.client].sort());
  });

  it('never puts meta into a frame, an HTTP body or a log line', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `secret:${uid()}`;
    const password = `hunter2-${uid()}-zz`;
    await a.join(room, { password });
    await b.fails({ op: 'join', room, payload: { password: 'wrong' } }, 'join_rejected');
    await b.join(room, { password });
    await a.act(room, 'isLocked');
    await a.sync(room);
    const bodies = await Promise.all([
      server.http('GET', `/api/rooms/${room}`),
      server.http('GET', '/api/rooms'),
      server.http('GET', '/api/status'),
      server.http('GET', '/metrics'),
    ]);
    assert.equal(bodies[0].status, 200);
    const frames = [...a.raw, ...b.raw].map((r) => r.text).join('\n');
    const http = bodies.map((r) => r.text).join('\n');
    // onCreate stored the password and a fingerprint derived from it in meta; the
    // fingerprint never travelled in any input, so it may appear nowhere at all.
    const fingerprint = `fp:${[...password].reverse().join('')}`;
    for (const [where, text] of [['frames', frames], ['HTTP bodies', http], ['server output', server.output()]]) {
      assert.ok(!text.includes(fingerprint), `meta leaked into ${where}`);
    }
    for (const [where, text] of [['frames', frames], ['HTTP bodies', http]]) {
      assert.ok(!text.includes(password), `the password (kept in meta) leaked into ${where}`);
    }
  });
});
