// The server frames what it sends itself (net/ws_frame.hpp): each header length RFC 6455
// has (7-bit, 16-bit and 64-bit payload lengths), for a lone line framed once and shared by
// every member, and for several lines joined into one message.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, uid } from './helpers.mjs';

const T = { timeout: 20000 };

describe('WebSocket framing of server messages', () => {
  let server;
  // A 50 ms window: the messages of the joining test below are all read within one, however
  // slow the machine, so lines for the same member are queued together (with the default
  // 2 ms a loaded CI machine could read them in different windows and send them apart).
  before(async () => {
    server = await startServer({ args: ['--max-message-bytes', '300000', '--coalesce-us', '50000'] });
  });
  after(cleanup);

  // data sizes giving an event line under 126 bytes, one under 64 KiB and one over it
  for (const size of [10, 300, 1000, 65000, 70000, 200000]) {
    it(`delivers a ${size}-byte event intact to every other member`, T, async () => {
      const [a, b, c] = await connectMany(server, 3);
      const room = `frames-${uid()}`;
      for (const x of [a, b, c]) await x.join(room);
      const data = 'x'.repeat(size);
      assert.equal((await a.request({ op: 'emit', room, event: 'big', data })).ok, true);
      for (const other of [b, c]) {
        const e = await other.next({ op: 'event', room, event: 'big' });
        assert.equal(e.data, data);
        assert.equal(other.badLines.length, 0);
      }
    });
  }

  it('joins lines of different sizes into messages that parse line by line', T, async () => {
    // Uncompressed: with permessage-deflate each large line is a message of its own
    // (deflate.test.mjs checks that framing).
    const [a, b] = await connectMany(server, 2, { perMessageDeflate: false });
    const room = `frames-${uid()}`;
    for (const x of [a, b]) await x.join(room);
    const sizes = [5, 200, 70000, 3, 66000, 120];
    // Sent without waiting, so they are queued for b in the same pass and share writes.
    sizes.forEach((n, i) => a.send({ op: 'emit', room, event: 'e', data: { i, s: 'y'.repeat(n) } }));
    for (let i = 0; i < sizes.length; ++i) {
      const e = await b.next({ op: 'event', room, event: 'e' });
      assert.equal(e.data.i, i);
      assert.equal(e.data.s.length, sizes[i]);
    }
    assert.equal(b.badLines.length, 0);
    assert.ok(b.raw.some((m) => m.text.includes('\n')), 'at least one message carried several lines');
  });
});
