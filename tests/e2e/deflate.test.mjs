// permessage-deflate (docs/protocol.md "Compression"): what the server agrees to, what it
// sends compressed and to whom, and every way a compressed client message can be wrong.
// A raw client here (RFC 6455 frames over a socket, zlib from Node) so that RSV1 can be
// seen and set by hand; ws, with its own permessage-deflate, checks the same from a client
// library users have.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import zlib from 'node:zlib';
import { decodeMulti, encode as encodeMsgpack } from '@msgpack/msgpack';
import { startServer, cleanup, uid, sleep } from './helpers.mjs';
import { clientFrame, rawWs } from './raw_ws.mjs';

const AGREED = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const MAX_BYTES = 16384;

// RFC 7692 7.2.1: raw deflate, sync-flushed, its last 4 bytes (00 00 ff ff) left off.
function compress(text) {
  const out = zlib.deflateRawSync(Buffer.from(text), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.deepEqual(out.subarray(-4), TAIL);
  return out.subarray(0, -4);
}

// The same, ending in a final block (BFINAL) instead: also a valid message (RFC 7692 7.2.3.3).
function compressFinal(text) {
  return zlib.deflateRawSync(Buffer.from(text));
}

function inflate(payload) {
  return zlib.inflateRawSync(Buffer.concat([payload, TAIL]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

const frame = clientFrame;

// A message as frames: compressed or not, cut into `pieces` frames (RSV1 on the first only).
function message(text, { compressed = false, final = false, pieces = 1, opcode = 1 } = {}) {
  const body = compressed ? (final ? compressFinal(text) : compress(text)) : Buffer.from(text);
  const cuts = [0];
  for (let i = 1; i < pieces; i += 1) cuts.push(Math.floor((body.length * i) / pieces));
  cuts.push(body.length);
  const frames = [];
  for (let i = 0; i + 1 < cuts.length; i += 1) {
    frames.push(frame(i === 0 ? opcode : 0, body.subarray(cuts[i], cuts[i + 1]),
      { fin: i + 2 === cuts.length, rsv1: compressed && i === 0 }));
  }
  return Buffer.concat(frames);
}

// Opens /ws on a raw socket (raw_ws.mjs), offering `extensions` (none when null). Resolves
// once upgraded with { agreed, messages, lines, next(pred), send(buf), sock, closed }. Each
// server message is { rsv1, binary, payload, wire } (payload inflated when rsv1); `lines`
// has every line, JSON or MessagePack.
async function deflateWs(server, { extensions = 'permessage-deflate; client_max_window_bits', protocol } = {}) {
  const c = { messages: [], lines: [] };
  const waiters = [];
  const deliver = () => {
    for (let i = 0; i < waiters.length; i += 1) {
      const found = c.lines.find((l) => waiters[i].pred(l));
      if (found) { clearTimeout(waiters[i].timer); waiters[i].resolve(found); waiters.splice(i, 1); i -= 1; }
    }
  };
  const onFrame = ({ fin, rsv1, rsv23, opcode, payload }) => {
    if (opcode === 9 || opcode === 10) return;
    assert.ok(fin, 'the server sends every message as one frame');
    assert.equal(rsv23, 0, 'RSV2 and RSV3 are never set');
    const m = { rsv1, binary: opcode === 2, payload: rsv1 ? inflate(payload) : payload, wire: payload.length };
    c.messages.push(m);
    if (opcode === 1) {
      for (const line of m.payload.toString('utf8').split('\n')) if (line) c.lines.push(JSON.parse(line));
    } else {
      for (const value of decodeMulti(m.payload)) c.lines.push(value);  // MessagePack, back to back
    }
    deliver();
  };
  const headers = {};
  if (extensions) headers['Sec-WebSocket-Extensions'] = extensions;
  if (protocol) headers['Sec-WebSocket-Protocol'] = protocol;
  const raw = await rawWs(server, { headers, onFrame });
  const ext = /^sec-websocket-extensions: *(.*)$/im.exec(raw.head);
  return Object.assign(c, {
    sock: raw.sock,
    closed: raw.closed,
    agreed: ext ? ext[1].trim() : null,
    send: (b) => { if (!raw.sock.destroyed) raw.sock.write(b); },
    next: (pred, timeoutMs = 4000) => new Promise((resolve, reject) => {
      waiters.push({ pred, resolve, timer: setTimeout(() => reject(new Error(`timed out; lines: ${JSON.stringify(c.lines).slice(-600)}; close: ${JSON.stringify(raw.closeInfo())}`)), timeoutMs) });
      deliver();
    }),
  });
}

async function metric(server, name) {
  const res = await server.http('GET', '/metrics');
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(res.text);
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
}

// Text that compresses as real payloads do (repeated keys, varied values).
function payloadText(bytes, seed = 1) {
  let s = '';
  let x = seed;
  while (s.length < bytes) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += `{"id":${x % 1000},"x":${x % 997},"name":"p${x % 89}"},`;
  }
  return s.slice(0, bytes);
}

describe('permessage-deflate', { timeout: 60000 }, () => {
  let server;
  before(async () => {
    server = await startServer({ args: ['--max-message-bytes', String(MAX_BYTES)] });
  });
  after(cleanup);

  it('is agreed without context takeover either way, whatever acceptable offer the client made', async () => {
    const cases = [
      ['permessage-deflate', AGREED],
      ['permessage-deflate; client_max_window_bits', AGREED],
      ['permessage-deflate; client_max_window_bits=10; server_no_context_takeover', AGREED],
      ['permessage-deflate; server_max_window_bits=15', AGREED],
      ['permessage-deflate; client_no_context_takeover; server_no_context_takeover', AGREED],
      ['x-webkit-deflate-frame, permessage-deflate', AGREED],
      // Declined, and the connection goes on uncompressed: a window under 32 KB for the
      // server's messages, an unknown or repeated parameter, a bad value.
      ['permessage-deflate; server_max_window_bits=10', null],
      ['permessage-deflate; x-unknown', null],
      ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', null],
      ['permessage-deflate; client_max_window_bits=16', null],
      ['permessage-deflate; client_max_window_bits=08', null],
      ['permessage-deflate; server_no_context_takeover=1', null],
      ['x-webkit-deflate-frame', null],
      [null, null],
    ];
    for (const [offer, want] of cases) {
      const c = await deflateWs(server, { extensions: offer });
      assert.equal(c.agreed, want, `offer ${offer}`);
      await c.next((l) => l.op === 'welcome');
      c.send(message(JSON.stringify({ op: 'ping', ref: 1 })));
      await c.next((l) => l.op === 'reply' && l.ref === 1 && l.result === 'pong');
      c.sock.destroy();
    }
  });

  it('refuses an upgrade whose offers are longer than 255 bytes with 400 and a reason', async () => {
    const long = `permessage-deflate, x-${'a'.repeat(240)}`;
    await assert.rejects(deflateWs(server, { extensions: long }), /HTTP\/1\.[01] 400/);
    const res = await new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: server.port, path: '/ws', headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'), 'Sec-WebSocket-Extensions': long } });
      req.on('response', (r) => { let body = ''; r.on('data', (d) => { body += d; }); r.on('end', () => resolve({ status: r.statusCode, body })); });
    });
    assert.equal(res.status, 400);
    assert.match(res.body, /Sec-WebSocket-Extensions is longer than 255 bytes/);
    const fits = await deflateWs(server, { extensions: `permessage-deflate, x-${'a'.repeat(200)}` });
    assert.equal(fits.agreed, AGREED);
    fits.sock.destroy();
  });

  it('takes the first offer it can honour when the client lists several', async () => {
    const c = await deflateWs(server, { extensions: 'permessage-deflate; server_max_window_bits=9, permessage-deflate; client_max_window_bits' });
    assert.equal(c.agreed, AGREED);
    const room = uid('multi');
    c.send(message(JSON.stringify({ op: 'join', room, ref: 1 }), { compressed: true }));
    await c.next((l) => l.op === 'reply' && l.ref === 1 && l.ok);
    c.sock.destroy();
  });

  it('sends large messages compressed, once for every member, and small ones as they are', async () => {
    const room = uid('fan');
    const zipped = await Promise.all([0, 1, 2].map(() => deflateWs(server)));
    const plain = await deflateWs(server, { extensions: null });
    const lib = await server.connect();                    // ws, deflate offered as browsers do
    const sender = await server.connect({ perMessageDeflate: false });
    for (const c of [...zipped, plain]) {
      c.send(message(JSON.stringify({ op: 'join', room, ref: 1 })));
      await c.next((l) => l.op === 'reply' && l.ref === 1);
    }
    await lib.ok({ op: 'join', room });
    await sender.ok({ op: 'join', room });
    assert.equal(lib.ws.extensions, 'permessage-deflate');
    const before = { msgs: await metric(server, 'atrium_deflated_messages_total'), runs: await metric(server, 'atrium_deflate_compressions_total') };

    const big = payloadText(6000, 7);
    await sender.ok({ op: 'emit', room, event: 'big', data: big });
    await sender.ok({ op: 'emit', room, event: 'small', data: 'hi' });
    for (const c of [...zipped, plain]) {
      const e = await c.next((l) => l.op === 'event' && l.event === 'big');
      assert.equal(e.data, big);
      await c.next((l) => l.op === 'event' && l.event === 'small');
    }
    assert.equal((await lib.next((m) => m.op === 'event' && m.event === 'big')).data, big);
    await lib.next((m) => m.op === 'event' && m.event === 'small');

    for (const c of zipped) {
      const m = c.messages.find((x) => x.payload.includes('"event":"big"'));
      assert.ok(m.rsv1, 'the large event is compressed');
      assert.ok(m.wire < big.length / 2, `${m.wire} bytes on the wire for ${big.length}`);
      assert.ok(!c.messages.find((x) => x.payload.includes('"event":"small"')).rsv1, 'a small one is not');
      assert.ok(!c.messages.some((x) => x.rsv1 && x.payload.includes('"event":"small"')));
    }
    const plainBig = plain.messages.find((x) => x.payload.includes('"event":"big"'));
    assert.ok(!plainBig.rsv1, 'a client that offered nothing gets nothing compressed');
    // Four members compressed (three raw, ws): four messages, one compression.
    assert.equal(await metric(server, 'atrium_deflated_messages_total') - before.msgs, 4);
    assert.equal(await metric(server, 'atrium_deflate_compressions_total') - before.runs, 1);
    for (const c of [...zipped, plain]) c.sock.destroy();
  });

  it('keeps the order of lines when compressed and uncompressed ones leave in one write', async () => {
    const room = uid('order');
    const member = await deflateWs(server);
    member.send(message(JSON.stringify({ op: 'join', room, ref: 1 })));
    await member.next((l) => l.op === 'reply' && l.ref === 1);
    const sender = await server.connect({ perMessageDeflate: false });
    await sender.ok({ op: 'join', room });
    // Sent back to back: they reach the member within one coalescing window.
    const sizes = [10, 3000, 20, 30, 5000, 4000, 5, 2600, 40];
    sizes.forEach((n, i) => sender.send({ op: 'emit', room, event: `e${i}`, data: payloadText(n, i + 1) }));
    await member.next((l) => l.op === 'event' && l.event === `e${sizes.length - 1}`);
    const events = member.lines.filter((l) => l.op === 'event');
    assert.deepEqual(events.map((e) => e.event), sizes.map((_, i) => `e${i}`));
    events.forEach((e, i) => assert.equal(e.data, payloadText(sizes[i], i + 1)));
    assert.ok(member.messages.some((m) => m.rsv1) && member.messages.some((m) => !m.rsv1));
    member.sock.destroy();
  });

  it('reads compressed client messages: whole, fragmented, ending in a final block, mixed with plain ones', async () => {
    const c = await deflateWs(server);
    const room = uid('in');
    const before = await metric(server, 'atrium_inflated_messages_total');
    c.send(message(JSON.stringify({ op: 'join', room, ref: 1 }), { compressed: true }));
    c.send(message(JSON.stringify({ op: 'ping', ref: 2 }), { compressed: true, pieces: 3 }));
    c.send(message(JSON.stringify({ op: 'ping', ref: 3 }), { compressed: true, final: true }));
    c.send(message(JSON.stringify({ op: 'ping', ref: 4 })));
    c.send(message(JSON.stringify({ op: 'emit', room, event: 'x', data: payloadText(12000), ref: 5 }), { compressed: true, pieces: 4 }));
    for (const ref of [1, 2, 3, 4, 5]) {
      const r = await c.next((l) => l.op === 'reply' && l.ref === ref);
      assert.equal(r.ok, true, JSON.stringify(r));
    }
    assert.equal(await metric(server, 'atrium_inflated_messages_total') - before, 4);
    c.sock.destroy();
  });

  it('speaks MessagePack compressed: binary frames with RSV1, both ways', async () => {
    const room = uid('mp');
    const member = await deflateWs(server, { protocol: 'atrium.v1.msgpack' });
    assert.equal(member.agreed, AGREED);
    const join = Buffer.from(encodeMsgpack({ op: 'join', room, ref: 1, pad: 'p'.repeat(400) }));
    member.send(frame(2, compress(join), { rsv1: true }));
    await member.next((l) => l.op === 'reply' && l.ref === 1 && l.ok);
    const sender = await server.connect({ perMessageDeflate: false });
    await sender.ok({ op: 'join', room });
    const big = payloadText(5000, 3);
    await sender.ok({ op: 'emit', room, event: 'big', data: big });
    assert.equal((await member.next((l) => l.op === 'event')).data, big);
    const m = member.messages.at(-1);
    assert.ok(m.rsv1 && m.binary);
    member.sock.destroy();
  });

  it('refuses a compressed message that inflates past the cap (1009), and leaves the others alone', async () => {
    const other = await deflateWs(server);
    const c = await deflateWs(server);
    // 1 MB of spaces: about a kilobyte compressed, 64 times the cap inflated.
    c.send(message(JSON.stringify({ op: 'ping', ref: 1, pad: ' '.repeat(1 << 20) }), { compressed: true }));
    assert.equal((await c.closed).code, 1009);
    // Exactly the cap still goes through.
    const fits = JSON.stringify({ op: 'ping', ref: 2, pad: '' });
    const exact = fits.replace('"pad":""', `"pad":"${'a'.repeat(MAX_BYTES - fits.length)}"`);
    assert.equal(exact.length, MAX_BYTES);
    other.send(message(exact, { compressed: true }));
    await other.next((l) => l.op === 'reply' && l.ref === 2);
    other.send(message(exact.replace('"pad":"a', '"pad":"aa'), { compressed: true }));
    assert.equal((await other.closed).code, 1009);
  });

  it('closes on data that is not deflate (1007), RSV1 past the first frame (1002), bad UTF-8 inside (1007)', async () => {
    const corrupt = await deflateWs(server);
    corrupt.send(frame(1, Buffer.from([0xff, 0xfe, 0xfd, 0xfc, 0x00, 0x11]), { rsv1: true }));
    assert.equal((await corrupt.closed).code, 1007);

    const cont = await deflateWs(server);
    const body = compress(JSON.stringify({ op: 'ping', ref: 1 }));
    cont.send(Buffer.concat([frame(1, body.subarray(0, 4), { fin: false, rsv1: true }),
      frame(0, body.subarray(4), { rsv1: true })]));
    assert.equal((await cont.closed).code, 1002);

    const utf8 = await deflateWs(server);
    utf8.send(frame(1, compress(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d])), { rsv1: true }));
    assert.equal((await utf8.closed).code, 1007);

    const cut = await deflateWs(server);
    cut.send(frame(1, compress(Buffer.concat([Buffer.from('{"op":"ping","x":"'), Buffer.from([0xe2, 0x82])])), { rsv1: true }));
    assert.equal((await cut.closed).code, 1007);

    // RSV1 without permessage-deflate agreed: a protocol error (lws closes at once).
    const unagreed = await deflateWs(server, { extensions: null });
    unagreed.send(frame(1, compress(JSON.stringify({ op: 'ping', ref: 1 })), { rsv1: true }));
    assert.ok([1002, 1006].includes((await unagreed.closed).code));

    const still = await deflateWs(server);
    still.send(message(JSON.stringify({ op: 'ping', ref: 9 }), { compressed: true }));
    await still.next((l) => l.op === 'reply' && l.ref === 9);
    still.sock.destroy();
  });

  it('randomized: any mix of compressed, plain, fragmented and final-block messages arrives whole and in order', async () => {
    const seed = Number(process.env.DEFLATE_SEED ?? Date.now() % 100000);
    let x = seed;
    const rnd = (n) => { x = (x * 1103515245 + 12345) % 2147483648; return x % n; };
    const room = uid('rand');
    const sender = await deflateWs(server);
    const member = await deflateWs(server);
    for (const c of [sender, member]) {
      c.send(message(JSON.stringify({ op: 'join', room, ref: 0 })));
      await c.next((l) => l.op === 'reply' && l.ref === 0);
    }
    const COUNT = Number(process.env.DEFLATE_COUNT ?? 300);
    const sent = [];
    for (let i = 1; i <= COUNT; i += 1) {
      const data = payloadText(rnd(5) === 0 ? rnd(9000) : rnd(400), i);
      sent.push(data);
      const text = JSON.stringify({ op: 'emit', room, event: 'r', data, ref: i });
      const compressed = rnd(3) !== 0;
      const bytes = message(text, { compressed, final: compressed && rnd(4) === 0, pieces: 1 + rnd(4) });
      // Written in random slices too: frames split across reads.
      for (let at = 0; at < bytes.length;) {
        const n = 1 + rnd(bytes.length);
        sender.send(bytes.subarray(at, at + n));
        at += n;
      }
      if (rnd(10) === 0) await sleep(1);
    }
    await sender.next((l) => l.op === 'reply' && l.ref === COUNT, 20000);
    const refs = sender.lines.filter((l) => l.op === 'reply' && l.ref > 0);
    assert.deepEqual(refs.map((r) => r.ref), sent.map((_, i) => i + 1), `seed ${seed}`);
    assert.ok(refs.every((r) => r.ok), `seed ${seed}`);
    await member.next((l) => l.op === 'event' && l.data === sent.at(-1), 20000);
    assert.deepEqual(member.lines.filter((l) => l.op === 'event').map((e) => e.data), sent, `seed ${seed}`);
    sender.sock.destroy();
    member.sock.destroy();
  });
});

describe('permessage-deflate and slow readers', () => {
  after(cleanup);
  it('closes a compressed member that stopped reading with 1013, as an uncompressed one', { timeout: 60000 }, async () => {
    const server = await startServer({ args: ['--outbox-bytes', '65536'] });
    const room = uid('slow');
    const slow = await deflateWs(server);
    slow.send(message(JSON.stringify({ op: 'join', room, ref: 1 })));
    await slow.next((l) => l.op === 'reply' && l.ref === 1);
    const sender = await server.connect({ perMessageDeflate: false });
    await sender.ok({ op: 'join', room });
    slow.sock.pause();
    // Random base64 compresses to about three quarters: some 12 MB on the wire, well past
    // the kernel's buffers and the outbox cap.
    for (let i = 0; i < 2000 && !slow.sock.destroyed; i += 1) {
      sender.send({ op: 'emit', room, event: 'flood', data: crypto.randomBytes(6000).toString('base64') });
      if (i % 100 === 99) await sender.ok({ op: 'ping' });
    }
    slow.sock.resume();
    assert.equal((await slow.closed).code, 1013);
    assert.equal(await sender.ok({ op: 'ping' }), 'pong');
    assert.ok(await metric(server, 'atrium_deflated_messages_total') > 0);
  });
});

describe('permessage-deflate off', () => {
  after(cleanup);
  it('--deflate off agrees to nothing, and large messages go out as they are', async () => {
    const server = await startServer({ args: ['--deflate', 'off'] });
    const c = await deflateWs(server);
    assert.equal(c.agreed, null);
    const ws = await server.connect();
    assert.equal(ws.ws.extensions, '');
    const room = uid('off');
    c.send(message(JSON.stringify({ op: 'join', room, ref: 1 })));
    await c.next((l) => l.op === 'reply' && l.ref === 1);
    await ws.ok({ op: 'join', room });
    await ws.ok({ op: 'emit', room, event: 'big', data: payloadText(5000) });
    await c.next((l) => l.op === 'event');
    assert.ok(c.messages.every((m) => !m.rsv1));
    c.sock.destroy();
  });

  it('--deflate-min-bytes sets what is worth compressing', async () => {
    const server = await startServer({ args: ['--deflate-min-bytes', '8000'] });
    const c = await deflateWs(server);
    assert.equal(c.agreed, AGREED);
    const room = uid('min');
    c.send(message(JSON.stringify({ op: 'join', room, ref: 1 })));
    await c.next((l) => l.op === 'reply' && l.ref === 1);
    const ws = await server.connect({ perMessageDeflate: false });
    await ws.ok({ op: 'join', room });
    await ws.ok({ op: 'emit', room, event: 'mid', data: payloadText(5000) });
    await ws.ok({ op: 'emit', room, event: 'big', data: payloadText(9000) });
    await c.next((l) => l.op === 'event' && l.event === 'big');
    const of = (event) => c.messages.find((m) => m.payload.includes(`"event":"${event}"`));
    assert.equal(of('mid').rsv1, false);
    assert.equal(of('big').rsv1, true);
    c.sock.destroy();
  });
});
