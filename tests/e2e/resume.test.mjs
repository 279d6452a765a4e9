// Seats held through a dropped connection and `resume` over real sockets
// (docs/protocol.md "Seats and resume"): the TCP connection is cut, the server notices,
// and a new connection takes the seat back with exactly the patches it missed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { cleanup, sleep, startServer, uid } from './helpers.mjs';

const T = { timeout: 20000 };

async function members(server, room) {
  const res = await server.http('GET', `/api/rooms/${room}/members`);
  return res.status === 200 ? res.json.members : [];
}

// Sends a resume and resolves with the frames that came before its reply, and the reply.
async function resume(client, session, rooms) {
  const from = client.mark();
  const reply = await client.request({ op: 'resume', session, rooms });
  const frames = client.log.slice(from).filter((m) => m.op !== 'reply');
  return { reply, frames };
}

describe('resume after a drop', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('holds the seat, then sends exactly the missed patches, keeping the client id', T, async () => {
    const room = `seated:${uid()}`;
    const a = await server.connect();
    const b = await server.connect();
    const joined = await a.join(room);
    await b.join(room);
    await a.untilView(room, (s) => s.log.length === 2);
    const { seq } = a.view(room);
    assert.match(joined.epoch, /^[0-9a-f]{16}$/);
    await a.terminate();
    // The server notices the cut connection and holds the seat.
    for (let i = 0; i < 50 && (await members(server, room)).every((m) => m.connected); ++i) await sleep(20);
    const held = (await members(server, room)).find((m) => m.client === a.welcome.client);
    assert.equal(held?.connected, false, 'the dropped member is held, not gone');
    for (let i = 0; i < 3; ++i) await b.act(room, 'bump');
    await b.untilView(room, (s) => s.n === 3);

    const a2 = await server.connect();
    const { reply, frames } = await resume(a2, a.welcome.session, { [room]: { seq, epoch: joined.epoch } });
    assert.equal(reply.ok, true, reply.$line);
    assert.equal(reply.result.client, a.welcome.client);
    const entry = reply.result.rooms[room];
    assert.equal(entry.recovered, true);
    assert.equal(entry.epoch, joined.epoch);
    assert.deepEqual(frames.map((f) => [f.op, f.seq]), Array.from({ length: entry.seq - seq }, (_, i) => ['patch', seq + 1 + i]));
    assert.equal(entry.seq, b.view(room).seq);
    // Nobody saw a leave or a second join; the client goes on under its old id.
    assert.deepEqual(b.view(room).state.log, [`join ${a.welcome.client}`, `join ${b.welcome.client}`]);
    assert.equal(await a2.act(room, 'bump'), 4);
    assert.ok((await members(server, room)).every((m) => m.connected));
    const metrics = (await server.http('GET', '/metrics')).text;
    assert.match(metrics, /atrium_resume_total\{recovered="true"\} [1-9]/);
    assert.match(metrics, /atrium_seats_held 0/);
  });

  it('takes over a connection still open: the old one is closed with 4002', T, async () => {
    const room = `seated:${uid()}`;
    const a = await server.connect();
    const joined = await a.join(room);
    const a2 = await server.connect();
    const { reply, frames } = await resume(a2, a.welcome.session, { [room]: { seq: joined.seq, epoch: joined.epoch } });
    assert.equal(reply.ok, true, reply.$line);
    assert.deepEqual(frames, []);
    const { code, reason } = await a.closedWithin(3000);
    assert.equal(code, 4002);
    assert.equal(reason, 'session resumed elsewhere');
    assert.equal(await a2.act(room, 'bump'), 1);
    assert.equal((await members(server, room)).length, 1);
  });

  it('ends the seat with onLeave disconnect when the grace runs out; the session is gone', T, async () => {
    const room = `seated:${uid()}`;
    const a = await server.connect();
    const b = await server.connect();
    await a.join(room);
    await b.join(room);
    await a.terminate();
    await b.untilView(room, (s) => s.log.includes(`disconnect ${a.welcome.client}`), 6000);
    const late = await server.connect();
    await late.fails({ op: 'resume', session: a.welcome.session, rooms: { [room]: 0 } }, 'not_found');
    // 200 wrong sessions change nothing for the room or for b.
    const probe = await server.connect();
    for (let i = 0; i < 200; ++i) {
      await probe.fails({ op: 'resume', session: i.toString(16).padStart(32, '0'), rooms: {} }, 'not_found');
    }
    assert.equal(await b.act(room, 'bump'), 1);
  });
});
