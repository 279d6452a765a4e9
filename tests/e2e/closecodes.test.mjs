// Closes the server starts while the client is still sending must reach the client with
// their code (ws_session.cpp, "Closing"). A socket closed with unread input in its receive
// buffer sends RST instead of FIN, and the client's kernel then drops the close frame it
// had not yet handed over: the client saw 1006. Raw sockets here, so that each client can
// keep sending after the server has decided to close it, as a real one that has not yet
// read the close frame does.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { startServer, cleanup, sleep } from './helpers.mjs';

const MAX_BYTES = 4096;
const RATE = 10;
const T = { timeout: 30000 };

// A masked client frame (RFC 6455 5.2).
function frame(opcode, payload, fin = true) {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.alloc(head + 4 + n);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) { out[1] = 0x80 | 126; out.writeUInt16BE(n, 2); } else { out[1] = 0x80 | 127; out.writeBigUInt64BE(BigInt(n), 2); }
  const mask = crypto.randomBytes(4);
  mask.copy(out, head);
  for (let i = 0; i < n; i += 1) out[head + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}

// Just a frame header announcing `n` payload bytes (masked with zeros: the payload is sent
// as is, later, in pieces).
function header(opcode, n) {
  const out = Buffer.alloc(10 + 4);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | 127;
  out.writeBigUInt64BE(BigInt(n), 2);
  return out;  // mask 0,0,0,0
}

// Opens a WebSocket over a raw socket. Resolves once upgraded with
// { sock, write(buf), closed: Promise<{code, reason}> } where closed settles when the
// socket ends: with the code and reason of the server's close frame, or 1006 if none came.
function rawWs(server) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(server.port, '127.0.0.1');
    const key = crypto.randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let info = null;
    let settle;
    const closed = new Promise((r) => { settle = r; });
    const finish = () => settle(info ?? { code: 1006, reason: '' });
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('no upgrade within 5 s')); }, 5000);
    const parse = () => {
      for (;;) {
        if (buf.length < 2) return;
        const op = buf[0] & 0x0f;
        let n = buf[1] & 0x7f;
        let at = 2;
        if (n === 126) { if (buf.length < 4) return; n = buf.readUInt16BE(2); at = 4; } else if (n === 127) { if (buf.length < 10) return; n = Number(buf.readBigUInt64BE(2)); at = 10; }
        if (buf.length < at + n) return;
        const payload = buf.subarray(at, at + n);
        buf = buf.subarray(at + n);
        if (op === 8 && !info) {
          info = n >= 2 ? { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString() } : { code: 1005, reason: '' };
          // Answer as a client does, then stop (the server ends the TCP connection).
          try { sock.write(frame(8, payload.subarray(0, 2))); } catch { /* gone */ }
        }
      }
    };
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        buf = buf.subarray(end + 4);
        if (!/^HTTP\/1\.1 101/.test(head)) { sock.destroy(); clearTimeout(timer); reject(new Error(head)); return; }
        upgraded = true;
        clearTimeout(timer);
        resolve({
          sock,
          closed,
          get closing() { return info !== null || sock.destroyed; },
          write: (b) => { if (!sock.destroyed && info === null) sock.write(b, () => {}); },
        });
      }
      parse();
    });
    sock.on('error', () => {});  // ECONNRESET: counted as 1006 unless the close frame came
    sock.on('close', finish);
    sock.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
}

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
