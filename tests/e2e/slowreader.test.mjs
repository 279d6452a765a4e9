// Slow readers: a client that stops reading while a room floods it is either brought
// back with one fresh state or, past the hard cap, disconnected with 1013; nobody else
// notices (docs/protocol.md "Heartbeat and reconnect"; --outbox-bytes in README.md
// "Settings").
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, uid, sleep } from './helpers.mjs';

const T = { timeout: 60000 };

// Members still connected: a client the server dropped (1013) keeps its seat for a resume
// (docs/protocol.md "Seats and resume"), with connected: false.
async function roomMembers(server, room) {
  const res = await server.http('GET', `/api/rooms/${room}/members`);
  return res.status === 200 ? res.json.members.filter((m) => m.connected).length : 0;
}

// Round trips a healthy client makes while the flood runs; each must come back quickly.
async function pingsDuring(client, ms) {
  const worst = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const t0 = Date.now();
    assert.equal(await client.ok({ op: 'ping' }, 3000), 'pong');
    worst.push(Date.now() - t0);
    await sleep(50);
  }
  return Math.max(...worst);
}

describe('slow readers', () => {
  let server;
  before(async () => { server = await startServer({ args: ['--outbox-bytes', '65536'] }); });
  after(cleanup);

  it('disconnects a client that stops reading an event flood with 1013 while others keep working', T, async () => {
    // Uncompressed: the flood is one letter repeated, which permessage-deflate would shrink
    // a hundredfold (the slow reader under compression: deflate.test.mjs).
    const [slow, healthy, bystander] = await connectMany(server, 3, { perMessageDeflate: false });
    const room = `flood:${uid()}`;
    await slow.join(room);
    await healthy.join(room);
    await bystander.join(`pubsub-${uid()}`);

    slow.ws._socket.pause();                      // stop reading: the kernel buffers fill, then the outbox
    await healthy.act(room, 'events', slow.welcome.client, 16384, 8, 5);

    // Past the hard cap the server closes the slow client, which leaves the room. Its
    // close frame sits behind megabytes the client has not read, so read again once the
    // server gave up (or after 3 s, by when far more than any cap has been queued).
    const worst = await pingsDuring(bystander, 1000);
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline && (await roomMembers(server, room)) >= 2) await sleep(100);
    slow.ws._socket.resume();
    const { code } = await slow.closedWithin(15000);
    assert.equal(code, 1013);

    assert.ok(worst < 2000, `a bystander's ping took ${worst} ms during the flood`);
    assert.equal(await healthy.ok({ op: 'ping' }), 'pong');
    assert.equal(await bystander.ok({ op: 'ping' }), 'pong');
    await healthy.act(room, 'stop');
    assert.equal(await roomMembers(server, room), 1, 'the slow client is no longer a connected member');
  });

  it('brings a client that stopped reading patches back with a fresh state, or drops it with 1013', T, async () => {
    const [slow, healthy] = await connectMany(server, 2, { perMessageDeflate: false });  // as above
    const room = `flood:${uid()}`;
    await slow.join(room);
    await healthy.join(room);

    slow.ws._socket.pause();
    await healthy.act(room, 'churn', 32768, 5);
    // Churn until far more than the kernel's socket buffers (~6 MB on loopback) plus the
    // outbox cap has been sent, or until the server gave up on the slow client (the room's
    // onLeave then stops the churn). A slow build (ASan) needs longer than a release one.
    const enough = Math.ceil(16e6 / 32768);
    const until = Date.now() + 25000;
    while (Date.now() < until && (await roomMembers(server, room)) === 2 &&
           (await healthy.sync(room)).state.round < enough) await sleep(250);
    const rounds = await healthy.act(room, 'stop');
    const dropped = (await roomMembers(server, room)) === 1;
    assert.ok(dropped || rounds >= enough, `the churn sent 16 MB (${rounds} of ${enough} rounds) or the slow client was dropped`);
    const synced = await healthy.sync(room);
    slow.ws._socket.resume();

    try {
      await slow.untilView(room, synced.seq, 20000);
    } catch (e) {
      if (!slow.closeInfo) throw e;
      assert.equal(slow.closeInfo.code, 1013, 'a slow reader that is dropped is closed with 1013');
      return;
    }
    const v = slow.view(room);
    assert.ok(v.resets >= 2, 'a fresh state frame replaced the patches the slow client could not take');
    assert.ok(slow.log.some((m) => m.op === 'state' && m.room === room), 'a state frame arrived');
    assert.deepEqual(v.gaps, [], 'no patch arrived after a gap without a state first');
    assert.deepEqual(v.failures, []);
    assert.equal(v.seq, synced.seq);
    assert.deepEqual(v.state, synced.state);
    assert.equal(await slow.ok({ op: 'ping' }), 'pong');
  });
});
