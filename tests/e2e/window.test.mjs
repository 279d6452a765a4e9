// The coalescing window (--coalesce-us; net/server.cpp): while one is open the server reads
// no input, then reads all of it in one turn and writes what it caused. What must hold:
// the loop wakes about once per window, not once per message; nothing waits longer than a
// window, not even a burst from one client that lws reads a chunk per turn; a message
// longer than one receive chunk is read through, not a chunk per window.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, uid, sleep } from './helpers.mjs';

const T = { timeout: 30000 };
const WINDOW_MS = 100;  // the longest --coalesce-us allows

describe('the coalescing window', () => {
  let server;
  before(async () => {
    server = await startServer({ args: ['--coalesce-us', String(WINDOW_MS * 1000)] });
  });
  after(cleanup);

  async function passes() {
    const res = await server.http('GET', '/metrics');
    const m = /^atrium_loop_passes_total (\d+)$/m.exec(res.text);
    assert.ok(m, 'no atrium_loop_passes_total in /metrics');
    return Number(m[1]);
  }

  // Two clients joined to a fresh untyped room.
  async function pair() {
    const [a, b] = await connectMany(server, 2);
    const room = `ev-${uid()}`;
    await a.join(room);
    await b.join(room);
    return { a, b, room };
  }

  // Records when each event of `room` reaches `client`, by its data.i.
  function arrivals(client, room) {
    const at = new Map();
    client.ws.on('message', (data) => {
      const now = Date.now();
      for (const line of data.toString('utf8').split('\n')) {
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.op === 'event' && msg.room === room) at.set(msg.data.i, now);
      }
    });
    return at;
  }

  it('reads messages spread over a window in one turn, and delivers each within a window', T, async () => {
    const { a, b, room } = await pair();
    const got = arrivals(b, room);
    const framesBefore = b.raw.length;
    const before = await passes();
    const sent = new Map();
    const count = 20;
    for (let i = 0; i < count; ++i) {  // ~60 ms: within one or two windows
      sent.set(i, Date.now());
      a.send({ op: 'emit', room, event: 'm', data: { i } });
      await sleep(3);
    }
    await b.until(() => got.size === count, 5000, 'every event');
    const turns = (await passes()) - before;
    // Woken per message, the loop would have turned at least `count` times (plus the
    // writes and the two /metrics requests).
    assert.ok(turns < count, `${turns} loop passes for ${count} messages`);
    for (const [i, t] of sent) {
      const waited = got.get(i) - t;
      assert.ok(waited <= WINDOW_MS + 100, `event ${i} took ${waited} ms (window ${WINDOW_MS} ms)`);
    }
    // and they came in few writes
    assert.ok(b.raw.length - framesBefore <= 6, `${b.raw.length - framesBefore} messages`);
  });

  it('reads a message longer than a receive chunk through while windows keep opening', T, async () => {
    const { a, b, room } = await pair();
    const got = arrivals(a, room);
    let ticking = true;
    const ticker = (async () => {  // keeps a window open all the time
      for (let i = 1000; ticking; ++i) {
        a.send({ op: 'emit', room, event: 'tick', data: { i } });
        await sleep(10);
      }
    })();
    await sleep(WINDOW_MS / 2);
    const text = 'x'.repeat(4000);  // 16 chunks of lws' 256-byte receive buffer
    const start = Date.now();
    b.send({ op: 'emit', room, event: 'long', data: { i: 0, text } });
    await a.until(() => got.has(0), 10000, 'the long event');
    ticking = false;
    await ticker;
    const waited = got.get(0) - start;
    // A chunk per window would be 16 windows (1.6 s). Its first chunk may wait one window
    // more (docs/protocol.md "Writes"): lws calls back only once a chunk fills or the
    // message ends, so the server cannot see a message begun in one.
    assert.ok(waited <= 2 * WINDOW_MS + 200, `the long message took ${waited} ms`);
  });
});
