// Closes the server starts while the client is still sending must reach the client with
// their code (ws_session.cpp, "Closing"). A socket closed with unread input in its receive
// buffer sends RST instead of FIN, and the client's kernel then drops the close frame it
// had not yet handed over: the client saw 1006. Raw sockets here, so that each client can
// keep sending after the server has decided to close it, as a real one that has not yet
// read the close frame does.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startServer, cleanup, sleep } from './helpers.mjs';
import { clientFrame, rawWs } from './raw_ws.mjs';

const MAX_BYTES = 4096;
const RATE = 10;
const T = { timeout: 30000 };

// Just a frame header announcing `n` payload bytes (masked with zeros: the payload is sent
// as is, later, in pieces).
function header(opcode, n) {
  const out = Buffer.alloc(10 + 4);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | 127;
  out.writeBigUInt64BE(BigInt(n), 2);
  return out;  // mask 0,0,0,0
}

// A client frame (raw_ws.mjs), final unless said otherwise.
const frame = (opcode, payload, fin = true) => clientFrame(opcode, payload, { fin });

// Keeps writing `chunk` (from make()) every `everyMs` until the server's close frame came or the
// socket went, at most `limitMs`.
async function keepSending(c, make, everyMs, limitMs) {
  const t0 = Date.now();
  while (!c.closing && Date.now() - t0 < limitMs) {
    c.write(make());
    await sleep(everyMs);
  }
}

// The codes of `results`, counted: { 1007: 98, 1006: 2 }.
function tally(results) {
  const t = {};
  for (const r of results) t[r.code] = (t[r.code] ?? 0) + 1;
  return t;
}

async function inBatches(n, size, fn) {
  const out = [];
  for (let i = 0; i < n; i += size) {
    out.push(...await Promise.all(Array.from({ length: Math.min(size, n - i) }, (_, k) => fn(i + k))));
  }
  return out;
}

describe('close codes reach a client that is still sending', () => {
  let server;
  before(async () => {
    server = await startServer({
      args: ['--max-message-bytes', String(MAX_BYTES), '--rate', String(RATE), '--log-level', 'error'],
    });
  });
  after(cleanup);

  it('1007 for a 280-300-byte text frame that is not UTF-8, 100 times', T, async () => {
    const results = await inBatches(100, 25, async () => {
      const c = await rawWs(server);
      const bytes = crypto.randomBytes(280 + crypto.randomInt(21));
      bytes[0] = 0xff;  // never UTF-8, whatever follows
      c.write(frame(1, bytes));
      return c.closed;
    });
    assert.deepEqual(tally(results), { 1007: 100 });
    for (const r of results) assert.equal(r.reason, 'bad utf8');
  });

  it('1009 for a message over --max-message-bytes in fragments, sent on and on', T, async () => {
    const results = await inBatches(20, 20, async () => {
      const c = await rawWs(server);
      const piece = Buffer.from('x'.repeat(1000));
      c.write(frame(1, piece, false));  // a text message, first fragment
      await keepSending(c, () => frame(0, piece, false), 2, 5000);  // continuations
      return c.closed;
    });
    assert.deepEqual(tally(results), { 1009: 20 });
    for (const r of results) assert.equal(r.reason, 'message too large');
  });

  it('1009 for one big frame over --max-message-bytes, sent on and on', T, async () => {
    const results = await inBatches(20, 20, async () => {
      const c = await rawWs(server);
      c.write(header(1, 1 << 30));  // a 1 GiB text frame, its payload never finished
      const piece = Buffer.from('y'.repeat(4000));
      await keepSending(c, () => piece, 2, 5000);
      return c.closed;
    });
    assert.deepEqual(tally(results), { 1009: 20 });
  });

  it('1008 for a connection flooding past --rate for 5 s, sending until closed', T, async () => {
    const results = await Promise.all(Array.from({ length: 4 }, async () => {
      const c = await rawWs(server);
      const ping = frame(1, Buffer.from('{"op":"ping"}'));
      const burst = Buffer.concat(Array.from({ length: 2 * RATE }, () => ping));
      // 20 times the rate, in bursts every 100 ms, until the server closes it.
      await keepSending(c, () => burst, 100, 9000);
      return c.closed;
    }));
    assert.deepEqual(results.map((r) => r.code), [1008, 1008, 1008, 1008], JSON.stringify(results));
    for (const r of results) assert.equal(r.reason, 'message rate abuse');
  });
});
