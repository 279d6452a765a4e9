// A flood of hostile connections against a server with a rate limit (docs/protocol.md
// "Transport" and "Notes for this server", Rate limit): 200 sockets send garbage (random
// bytes as text, invalid UTF-8, binary frames, unterminated JSON), oversized messages and
// over-rate bursts, two keep flooding until they are closed for abuse, while a few real
// clients play a counter at a normal rate. The real clients must get every reply and patch,
// in order, and end with the state their calls imply; afterwards the server still serves
// and /metrics counts what it refused. Bounded by the abuse close (about 5 s); asserts
// behaviour, not timing.
//
// Every close asserted here comes when the server has read all the client sent: a socket
// closed with input still unread is reset (TCP RST), and the client may then lose the
// close frame and see 1006. So random text stays within one read, the oversized message is
// one byte over the limit, and the abusers stop their bursts before the abuse is decided
// and then send one message at a time.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startServer, cleanup, exampleRooms, sleep, uid } from './helpers.mjs';

const RATE = 50;
const MAX_BYTES = 4096;
const T = { timeout: 60000 };

// Opens n sockets without waiting for anything but their welcome.
const many = (server, n) => Promise.all(Array.from({ length: n }, () => server.connect()));

// A socket's send that never throws (the server may close it in the middle of a burst).
function sendQuiet(c, data, opts = {}) {
  if (c.ws.readyState !== 1) return;
  c.ws.send(data, opts, () => {});
}

function metric(text, name) {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `/metrics has no ${name}`);
  return Number(m[1]);
}

describe('flood', () => {
  let server;
  before(async () => {
    server = await startServer({
      rooms: exampleRooms,
      args: ['--rate', String(RATE), '--max-message-bytes', String(MAX_BYTES), '--log-level', 'warn'],
    });
  });
  after(cleanup);

  it('keeps real clients whole while 200 sockets send garbage, oversized and over-rate messages', T, async () => {
    // --- the real clients: a shared counter, called at 10 per second each
    const room = `counter:${uid('flood')}`;
    const players = await many(server, 4);
    for (const p of players) await p.join(room);
    const played = players.map(() => []);              // [{by, reply}] per player, in order
    let playing = true;
    const play = players.map(async (p, i) => {
      let n = 0;
      while (playing || n < 10) {
        const by = 1 + ((i * 7 + n * 3) % 5);
        played[i].push({ by, reply: await p.call(room, 'increment', by) });
        n += 1;
        await sleep(100);
      }
    });

    try {
      // --- the flood: 200 sockets in groups
      const flood = await many(server, 200);
      const groups = {
        randomText: flood.slice(0, 40),       // random bytes in a text frame
        badUtf8: flood.slice(40, 80),         // a text frame that is surely not UTF-8
        binary: flood.slice(80, 120),         // binary frames (bad_request), in bursts
        unterminated: flood.slice(120, 160),  // JSON cut short (bad_json), in bursts
        oversized: flood.slice(160, 180),     // past --max-message-bytes
        pingBurst: flood.slice(180, 198),     // 3 * RATE pings at once, each with a ref
        abusers: flood.slice(198, 200),       // 40 times the rate for 5 s: closed (1008)
      };
      for (const c of groups.randomText) sendQuiet(c, crypto.randomBytes(1 + crypto.randomInt(200)), { binary: false });
      for (const c of groups.badUtf8) sendQuiet(c, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0xc0, 0x80, 0x22, 0x7d]), { binary: false });
      const pad = MAX_BYTES + 1 - '{"op":"ping","pad":""}'.length;
      for (const c of groups.oversized) sendQuiet(c, `{"op":"ping","pad":"${'x'.repeat(pad)}"}`);
      for (const c of groups.binary) for (let k = 0; k < 2 * RATE; k += 1) sendQuiet(c, crypto.randomBytes(64), { binary: true });
      for (const c of groups.unterminated) for (let k = 0; k < 2 * RATE; k += 1) sendQuiet(c, `{"op":"call","ref":${k},"room":"counter:x","args":[1,`);
      const burst = 3 * RATE;
      for (const c of groups.pingBurst) for (let k = 0; k < burst; k += 1) sendQuiet(c, JSON.stringify({ op: 'ping', ref: k }));
      // 40 times the rate, in bursts every 100 ms, through 4.8 of the 5 seconds the server
      // counts from the first message; then one ping at a time (each answered rate_limited or
      // pong) until the first message after the 5th second is refused with the close.
      const abuse = async (c) => {
        const t0 = Date.now();
        while (Date.now() - t0 < 4800) {
          for (let k = 0; k < 4 * RATE; k += 1) sendQuiet(c, '{"op":"ping","ref":"burst"}');
          await sleep(100);
        }
        await sleep(5300 - (Date.now() - t0));
        for (let ref = 0; ref < 100 && !c.closeInfo; ref += 1) {
          const answered = c.next({ op: 'reply', ref }, 10000).catch(() => null);
          sendQuiet(c, JSON.stringify({ op: 'ping', ref }));
          await Promise.race([answered, c.closed]);
        }
        return c.closedWithin(5000);
      };
      const closes = await Promise.all(groups.abusers.map(abuse));
      for (const info of closes) assert.deepEqual(info, { code: 1008, reason: 'message rate abuse' });

      // --- what each hostile group got
      for (const c of groups.badUtf8) assert.equal((await c.closedWithin(5000)).code, 1007);
      for (const c of groups.oversized) assert.equal((await c.closedWithin(5000)).code, 1009);
      for (const c of groups.randomText) {
        // Random bytes are almost never UTF-8 (1007); when they are, they are not JSON.
        if (c.closeInfo) assert.equal(c.closeInfo.code, 1007);
        else await c.until(() => c.log.length >= 2, 5000);
      }
      for (const c of [...groups.binary, ...groups.unterminated]) {
        await c.until(() => c.log.length === 1 + 2 * RATE, 5000, 'an answer to every message');
        const codes = c.log.slice(1).map((m) => `${m.op}:${m.error?.code}`);
        const own = groups.binary.includes(c) ? 'error:bad_request' : 'error:bad_json';
        assert.ok(codes.every((x) => x === own || x === 'error:rate_limited'), codes.join(' '));
        assert.ok(codes.filter((x) => x === own).length >= RATE, `a burst of ${RATE} passes: ${codes.join(' ')}`);
        assert.ok(codes.includes('error:rate_limited'), 'the rest of the burst is refused');
        assert.equal(c.closeInfo, null, 'refused, not closed');
      }
      for (const c of groups.pingBurst) {
        await c.until(() => c.log.length === 1 + burst, 5000, 'a reply to every ping');
        const replies = c.log.slice(1);
        assert.deepEqual(replies.map((m) => m.ref), Array.from({ length: burst }, (_, k) => k), 'every ref once, in order');
        const passed = replies.filter((m) => m.ok);
        const refused = replies.filter((m) => !m.ok);
        assert.ok(passed.length >= RATE && passed.length < burst, `${passed.length} of ${burst} passed`);
        for (const m of refused) assert.equal(m.error.code, 'rate_limited', m.$line);
        for (const m of passed) assert.equal(m.result, 'pong');
      }
    } finally {
      playing = false;
      await Promise.allSettled(play);
    }

    // --- the real clients: every reply, every patch, in order, and the right end state
    await Promise.all(play);
    const total = played.flat().reduce((s, x) => s + x.by, 0);
    for (const [i, calls] of played.entries()) {
      let last = -Infinity;
      for (const { reply } of calls) {
        assert.equal(reply.ok, true, `player ${i}: ${reply.$line}`);
        assert.ok(reply.result > last, `player ${i}: results rise (${reply.result} after ${last})`);
        last = reply.result;
      }
    }
    const maxResult = Math.max(...played.flat().map((x) => x.reply.result));
    assert.equal(maxResult, total, 'the last increment saw the sum of all of them');
    const state = (await server.http('GET', `/api/rooms/${room}`)).json.state;
    assert.equal(state.value, total);
    for (const p of players) {
      await p.untilView(room, (s) => s.value === total, 5000);
      const v = p.view(room);
      assert.deepEqual(v.gaps, [], 'no sequence gap');
      assert.deepEqual(v.failures, [], 'every patch applied');
      assert.deepEqual(v.state, state);
      assert.deepEqual(p.badLines, []);
      assert.equal(p.closeInfo, null);
    }

    // --- afterwards: new clients are served, and /metrics counts the refusals
    const fresh = await server.connect();
    assert.equal(await fresh.ok({ op: 'ping' }), 'pong');
    assert.equal((await fresh.join(room)).state.value, total);
    const metrics = (await server.http('GET', '/metrics')).text;
    assert.ok(metric(metrics, 'atrium_rate_limited_total') > 0);
    assert.ok(metric(metrics, 'atrium_rate_abuse_closes_total') >= 2);
    assert.equal(server.child.exitCode, null, 'the server is still running');
  });

  it('exits cleanly after the flood (no sanitizer report under ASan)', T, async () => {
    const code = await server.stop(30000);
    const stderr = server.stderr();
    assert.doesNotMatch(stderr, /AddressSanitizer|LeakSanitizer|runtime error:/, stderr.slice(-4000));
    assert.equal(code, 0, stderr.slice(-4000));
  });
});
