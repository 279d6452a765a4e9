// Seats and resume against the real server (docs/protocol.md "Seats and resume"): a member
// whose socket is cut keeps its seat in a typed room for the grace, and the client's `resume`
// takes it back with the same client id and session, bringing each room up to date with the
// patches it missed (or one `state`). The test room `seats` logs every join and leave in its
// state. `tap.refuse` keeps the client away while the other member acts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { uid, until, nextEvent, tappedWebSocket, WebSocket, useServer, sleep } from './helpers.mjs';

const T = { timeout: 20000 };
// An event promise awaited later: if the test fails first, its rejection is not unhandled.
const later = (p) => (p.catch(() => {}), p);
const FAST = { minReconnectDelay: 20, maxReconnectDelay: 200 };

// The frames a socket received, parsed; and those before the reply to `ref` (welcome left out).
const frames = (sock) => sock.received.map((l) => JSON.parse(l));
function beforeReply(sock, ref) {
  const all = frames(sock);
  const i = all.findIndex((m) => m.op === 'reply' && m.ref === ref);
  assert.ok(i >= 0, `a reply to ref ${ref}`);
  return { before: all.slice(0, i).filter((m) => m.op !== 'welcome'), reply: all[i] };
}

// Cuts the client's socket (a drop, not a clean close) and keeps it from reconnecting until
// the returned function is called; resolves once the client is reconnecting.
async function goAway(c, tap) {
  tap.refuse = true;
  tap.last().cut();
  await until(() => c.status === 'reconnecting', 'reconnecting');
  return async () => {
    tap.refuse = false;
    await until(() => c.status === 'open', 'open again', 8000);
    const sock = tap.last();
    const resume = sock.sent[0];
    assert.equal(resume.op, 'resume', 'resume is the first request of the new connection');
    return { sock, resume, ...beforeReply(sock, resume.ref) };
  };
}

// Calls `bump` (or `big`) n times as the member of `room`, one patch each (waits for each).
async function bump(room, n, method = 'bump') {
  for (let i = 0; i < n; i++) {
    const want = room.state.n + 1;
    assert.equal(await room.call(method), want);
    await until(() => room.state.n === want, `n = ${want}`);
  }
}

describe('resume', () => {
  const ctx = useServer({ client: FAST });
  const { open } = ctx;

  async function pair(tap) {
    const c = await open({ WebSocket: tap.WebSocket });
    const other = await open();
    const id = `seats:${uid()}`;
    const room = await c.join(id);
    const ro = await other.join(id);
    await until(() => room.state.log.length === 2 && ro.state.log.length === 2, 'both joined');
    return { c, other, id, room, ro };
  }

  it('a dropped member resumes its seat: the missed patches, the same client id and session, no leave or join', T, async () => {
    const tap = tappedWebSocket();
    const { c, id, room, ro } = await pair(tap);
    assert.equal(typeof room.epoch, 'string');
    assert.ok(room.epoch.length > 0, 'join gives the epoch');
    assert.equal(ro.epoch, room.epoch, 'one room incarnation, one epoch');
    assert.equal(room.recovered, undefined);
    const [oldId, oldSession, oldEpoch] = [c.id, c.session, room.epoch];
    const resumed = later(nextEvent(room, 'resumed', 10000));
    const seen = [];
    room.on('state', (s, ops) => seen.push(ops ? 'patch' : 'whole'));

    const back = await goAway(c, tap);
    const seqAtDrop = room.seq;
    await until(async () => {
      const r = await ctx.server.http('GET', `/api/rooms/${id}/members`);
      return r.json?.members?.find((m) => m.client === oldId)?.connected === false;
    }, 'the seat held (members: connected false)');
    await bump(ro, 3);
    assert.equal(room.state.n, 0, 'nothing reached the client while away');

    const { resume, before, reply } = await back();
    assert.deepEqual(resume.rooms, { [id]: { seq: seqAtDrop, epoch: oldEpoch } });
    assert.equal(resume.session, oldSession);
    assert.deepEqual(before.map((m) => [m.op, m.room, m.seq]),
      [1, 2, 3].map((k) => ['patch', id, seqAtDrop + k]), 'exactly the missed patches, before the reply');
    assert.equal(reply.ok, true);
    assert.deepEqual(reply.result, { client: oldId, rooms: { [id]: { recovered: true, epoch: oldEpoch, seq: seqAtDrop + 3 } } });
    assert.deepEqual(await resumed, [{ recovered: true }]);
    assert.equal(room.recovered, true);
    assert.deepEqual(seen, ['patch', 'patch', 'patch']);
    assert.equal(c.id, oldId, 'the same client id');
    assert.equal(c.session, oldSession, 'the same session');
    assert.equal(c.room(id), room);
    assert.equal(room.epoch, oldEpoch);
    assert.equal(room.seq, ro.seq);
    assert.deepEqual(room.state, ro.state);
    assert.ok(!tap.last().sent.some((m) => m.op === 'join'), 'no rejoin');
    assert.deepEqual(ro.state.log, room.state.log);
    assert.equal(ro.state.log.length, 2, `the other member saw no leave and no join: ${JSON.stringify(ro.state.log)}`);
    assert.equal(await room.call('whoami'), oldId);
    const members = (await ctx.server.http('GET', `/api/rooms/${id}/members`)).json.members;
    assert.equal(members.find((m) => m.client === oldId)?.connected, true);
    await bump(ro, 1);
    await until(() => room.state.n === 4, 'live patches after the resume');
  });

  // The session ends when its last seat is released (a kick, a close): another room keeps a
  // seat here, so that the resume finds the session and says what became of this one.
  it('a room closed and created again while away: the resume says left(closed)', T, async () => {
    const tap = tappedWebSocket();
    const { c, other, id, room, ro } = await pair(tap);
    const keeper = await c.join(`seats:${uid()}`);
    const oldEpoch = room.epoch;
    const left = later(nextEvent(room, 'left', 10000));
    let resumed = 0;
    room.on('resumed', () => resumed++);
    const back = await goAway(c, tap);
    const closed = later(nextEvent(ro, 'left'));
    await ro.call('close');
    assert.equal((await closed)[0], 'closed');
    const again = await other.join(id);                 // a new incarnation under the same id
    assert.notEqual(again.epoch, oldEpoch, 'a room created again has another epoch');
    const { reply } = await back();
    assert.deepEqual(reply.result.rooms[id], { left: 'closed' });
    assert.equal(reply.result.rooms[keeper.id].recovered, true);
    assert.deepEqual(await left, ['closed', undefined]);
    assert.equal(c.room(id), undefined);
    assert.equal(resumed, 0);
    assert.equal(room.recovered, undefined);
    assert.ok(!tap.last().sent.some((m) => m.op === 'join'), 'a closed room is not rejoined');
  });

  it('kicked while away: the resume says left(kicked)', T, async () => {
    const tap = tappedWebSocket();
    const { c, id, room, ro } = await pair(tap);
    const keeper = await c.join(`seats:${uid()}`);
    const oldId = c.id;
    const left = later(nextEvent(room, 'left', 10000));
    const back = await goAway(c, tap);
    await ro.call('kick', oldId);
    await until(() => ro.state.log.length === 3, 'onLeave ran');
    assert.equal(ro.state.log[2], `leave ${oldId} kicked`);
    const { reply } = await back();
    assert.deepEqual(reply.result.rooms[id], { left: 'kicked' });
    assert.equal(reply.result.rooms[keeper.id].recovered, true);
    assert.equal((await left)[0], 'kicked');
    assert.equal(c.room(id), undefined);
    assert.equal(c.id, oldId, 'the session resumed all the same');
  });

  it('another epoch, or a seq the room never reached: one state frame, recovered false', T, async () => {
    const tap = tappedWebSocket();
    const { c, other, id, room, ro } = await pair(tap);
    const id2 = `seats:${uid()}`;
    const room2 = await c.join(id2);
    const ro2 = await other.join(id2);
    await until(() => room2.state.log.length === 2, 'both in the second room');
    const realEpoch = room.epoch;
    room.epoch = 'not-this-one';                         // as if from an older incarnation
    room2.seq += 1000;                                   // ahead of the room
    const got = later(Promise.all([nextEvent(room, 'resumed', 10000), nextEvent(room2, 'resumed', 10000)]));
    const back = await goAway(c, tap);
    await bump(ro, 1);
    const { resume, before, reply } = await back();
    assert.deepEqual(Object.keys(resume.rooms), [id, id2]);
    assert.deepEqual(before.map((m) => [m.op, m.room]), [['state', id], ['state', id2]], 'one state each, in the order of rooms');
    assert.equal(before[0].epoch, realEpoch);
    assert.deepEqual(reply.result.rooms[id], { recovered: false, epoch: realEpoch, seq: ro.seq });
    assert.equal(reply.result.rooms[id2].recovered, false);
    assert.deepEqual(await got, [[{ recovered: false }], [{ recovered: false }]]);
    assert.equal(room.epoch, realEpoch);
    assert.deepEqual(room.state, ro.state);
    assert.equal(room.seq, ro.seq);
    assert.equal(room2.seq, ro2.seq);
    assert.deepEqual(room2.state, ro2.state);
    assert.equal(room.recovered, false);
    assert.equal(ro.state.log.length, 2, 'the seat was kept all the same');
  });

  it('a held seat the resume did not list comes back as a joined frame', T, async () => {
    const tap = tappedWebSocket();
    const { c, id, room } = await pair(tap);
    const id2 = `seats:${uid()}`;
    await c.join(id2);
    c.rooms.delete(id2);                                 // the client forgot it: not listed
    const joined = later(nextEvent(c, 'joined', 10000));
    const back = await goAway(c, tap);
    const { resume, before, reply } = await back();
    assert.deepEqual(Object.keys(resume.rooms), [id]);
    assert.deepEqual(before.map((m) => [m.op, m.room]), [['joined', id2]]);
    assert.equal(typeof before[0].epoch, 'string');
    assert.equal(reply.result.rooms[id].recovered, true);
    const [placed] = await joined;
    assert.equal(placed.id, id2);
    assert.equal(placed.epoch, before[0].epoch);
    assert.equal(c.room(id2), placed);
    assert.equal(room.recovered, true);
  });

  it('an untyped room holds no seat: the resume says not_member and the client joins it again', T, async () => {
    const tap = tappedWebSocket();
    const { c, id, room } = await pair(tap);
    const lobby = `lobby${uid()}`;
    const free = await c.join(lobby);
    const back = await goAway(c, tap);
    const { reply, sock } = await back();
    assert.deepEqual(reply.result.rooms[lobby], { left: 'not_member' });
    assert.equal(reply.result.rooms[id].recovered, true);
    assert.ok(sock.sent.some((m) => m.op === 'join' && m.room === lobby), 'joined again');
    assert.ok(!sock.sent.some((m) => m.op === 'join' && m.room === id));
    assert.equal(c.room(lobby), free);
    assert.equal(free.recovered, false);
    assert.equal(room.recovered, true);
  });

  it('a resume from another connection takes the session over: the client gets 4002 and stops, left(replaced)', T, async () => {
    const tap = tappedWebSocket();
    const { c, id, room, ro } = await pair(tap);
    const left = later(nextEvent(room, 'left', 10000));
    const statuses = [];
    c.on('status', (s) => statuses.push(s));
    const closedWith = new Promise((resolve) => tap.last().ws.on('close', (code, reason) => resolve([code, String(reason)])));

    // Another tab: a raw connection that resumes the client's session.
    const raw = new WebSocket(ctx.server.url, ['atrium.v1']);
    const lines = [];
    raw.on('message', (d) => lines.push(...String(d).split('\n').filter(Boolean).map((l) => JSON.parse(l))));
    await until(() => lines.some((m) => m.op === 'welcome'), 'welcome on the raw connection');
    raw.send(JSON.stringify({ op: 'resume', ref: 1, session: c.session, rooms: { [id]: { seq: room.seq, epoch: room.epoch } } }));
    await until(() => lines.some((m) => m.op === 'reply' && m.ref === 1), 'the resume reply', 5000);
    const reply = lines.find((m) => m.op === 'reply' && m.ref === 1);
    try {
      assert.equal(reply.ok, true, JSON.stringify(reply));
      assert.equal(reply.result.client, c.id);
      assert.equal(reply.result.rooms[id].recovered, true);
      assert.deepEqual(await closedWith, [4002, 'session resumed elsewhere']);
      assert.deepEqual(await left, ['replaced', 'session resumed elsewhere']);
      assert.equal(c.status, 'closed');
      assert.deepEqual(statuses, ['closed']);
      assert.equal(c.rooms.size, 0);
      await sleep(400);                                  // several backoff periods
      assert.equal(tap.sockets.length, 1, 'no reconnect: it would take the seat back');
      await assert.rejects(room.call('whoami'), { code: 'closed' });
      // The raw connection is the member now; the other member saw nothing change.
      raw.send(JSON.stringify({ op: 'call', ref: 2, room: id, method: 'whoami' }));
      await until(() => lines.some((m) => m.op === 'reply' && m.ref === 2), 'whoami on the raw connection');
      assert.equal(lines.find((m) => m.ref === 2).result, reply.result.client);
      assert.equal(ro.state.log.length, 2);
    } finally {
      raw.close(1000);
    }
  });

  it('a client too far behind for the patch log gets one state frame, recovered false', T, async () => {
    const tap = tappedWebSocket();
    const { c, id, room, ro } = await pair(tap);
    const resumed = later(nextEvent(room, 'resumed', 10000));
    const back = await goAway(c, tap);
    await bump(ro, 3, 'big');                            // ~300 kB of patches: past the log's bytes
    const { before, reply } = await back();
    assert.deepEqual(before.map((m) => [m.op, m.room, m.seq]), [['state', id, ro.seq]]);
    assert.deepEqual(reply.result.rooms[id], { recovered: false, epoch: room.epoch, seq: ro.seq });
    assert.deepEqual(await resumed, [{ recovered: false }]);
    assert.deepEqual(room.state, ro.state);
    assert.equal(ro.state.log.length, 2, 'the seat was held');
  });
});
