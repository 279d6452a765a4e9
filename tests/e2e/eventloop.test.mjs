// --event-loop libuv (net/event_loop.hpp): the same server on libuv's epoll loop. The
// behaviours that depend on the loop: delivery, timers (patch intervals), server-sent
// close frames (slow reader 1013, SIGTERM 1001) and a clean exit.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, uid, sleep } from './helpers.mjs';

const T = { timeout: 30000 };

describe('the libuv event loop', () => {
  let server;
  before(async () => {
    server = await startServer({ args: ['--event-loop', 'libuv', '--outbox-bytes', '65536'] });
  });
  after(cleanup);

  async function members(room) {
    const res = await server.http('GET', `/api/rooms/${room}`);
    return res.status === 200 ? res.json.members : 0;
  }

  it('says which loop it runs', T, async () => {
    assert.match(server.output(), /loop=(libuv|poll)/);
  });

  it('delivers emits and patches at the patch interval', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `batch:${uid()}`;
    await a.join(room);
    await b.join(room);
    await a.act(room, 'inc');
    await b.untilView(room, (s) => s.n === 1, 3000);
    const pubsub = `ev-${uid()}`;
    await a.join(pubsub);
    await b.join(pubsub);
    a.send({ op: 'emit', room: pubsub, event: 'hi', data: 1 });
    assert.equal((await b.next({ op: 'event', room: pubsub, event: 'hi' })).data, 1);
  });

  it('closes a client that stopped reading with 1013, with the close frame', T, async () => {
    // Uncompressed: the flood is one letter repeated, which permessage-deflate would shrink
    // a hundredfold, and the kernel's buffers would take minutes to fill.
    const [slow, healthy] = await connectMany(server, 2, { perMessageDeflate: false });
    const room = `flood:${uid()}`;
    await slow.join(room);
    await healthy.join(room);
    slow.ws._socket.pause();                 // the kernel buffers fill, then the outbox
    await healthy.act(room, 'events', slow.welcome.client, 16384, 8, 5);
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline && (await members(room)) >= 2) await sleep(100);
    slow.ws._socket.resume();
    const { code } = await slow.closedWithin(15000);
    assert.equal(code, 1013);
    await healthy.act(room, 'stop');
  });

  it('closes every client with 1001 on SIGTERM and exits 0', T, async () => {
    const [a] = await connectMany(server, 1);
    await a.join(`bye-${uid()}`);
    server.child.kill('SIGTERM');
    const info = await a.closed;
    assert.equal(info.code, 1001);
    assert.equal(await server.exited, 0);
  });
});
