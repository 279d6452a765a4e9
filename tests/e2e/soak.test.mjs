// Soak: connect, join, call, leave and disconnect over and over, 50 clients at a time,
// a quarter of them with a token (docs/protocol.md "Transport", Authentication: a valid
// token's `sub` becomes welcome.userId). The server's memory must level off: its RSS after
// a warm-up and at the end stay within a bound, and under ASan (detect_leaks=1, as
// scripts/test.sh runs it) it must exit 0 with no sanitizer report.
//
// ATRIUM_SOAK_CYCLES sets the number of cycles: 1,000 by default so that the suite stays
// fast, 10,000 for the full soak.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { startServer, cleanup, connect, exampleRooms, sleep } from './helpers.mjs';

const CYCLES = Number(process.env.ATRIUM_SOAK_CYCLES ?? 1000);
const CONCURRENCY = 50;
const WARMUP = Math.min(500, Math.floor(CYCLES / 5));
const ROOMS = 10;
const SECRET = 'soak-secret-0123456789abcdef';
const T = { timeout: 120000 + CYCLES * 30 };

const b64url = (data) => Buffer.from(data).toString('base64url');

// An HS256 JWT for `sub`, valid for an hour.
function sign(sub) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 3600 }));
  const mac = crypto.createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${mac}`;
}

// The resident set of a process, in bytes (VmRSS of /proc/PID/status).
function rss(pid) {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'no VmRSS');
  return Number(m[1]) * 1024;
}

// A server built with ASan keeps freed memory in quarantine (256 MiB by default): its RSS
// says nothing about leaks, which LeakSanitizer checks at exit instead.
function underAsan(pid) {
  return /libasan|libclang_rt\.asan/.test(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));
}

const MiB = 1 << 20;

describe('soak', () => {
  let server;
  before(async () => {
    server = await startServer({ rooms: exampleRooms, args: ['--jwt-secret', SECRET, '--log-level', 'warn'] });
  });
  after(cleanup);

  it(`runs ${CYCLES} connect/join/call/leave/disconnect cycles, ${CONCURRENCY} at a time, in bounded memory`, T, async (t) => {
    let next = 0;
    let done = 0;
    let tokened = 0;
    let rssWarm = 0;
    const failures = [];
    const started = Date.now();

    const cycle = async (i) => {
      const sub = i % 4 === 0 ? `user-${i}` : null;
      const url = sub ? `${server.url}?token=${sign(sub)}` : server.url;
      const c = await connect(url);
      try {
        if (sub) {
          assert.equal(c.welcome.userId, sub, `a valid token's sub is welcome.userId: ${c.welcome.$line}`);
          tokened += 1;
        } else {
          assert.equal(c.welcome.userId, undefined);
        }
        const room = `counter:soak${i % ROOMS}`;
        const joined = await c.join(room);
        assert.equal(typeof joined.state.value, 'number');
        const value = await c.act(room, 'increment', 1 + (i % 3));
        assert.equal(typeof value, 'number');
        if (sub) assert.equal(await c.act(room, 'myBumps'), 1, 'bumps are counted by userId');
        await c.leave(room);
        assert.deepEqual(c.badLines, []);
      } finally {
        await c.close();
      }
    };

    const worker = async () => {
      while (next < CYCLES && failures.length === 0) {
        const i = next++;
        try {
          await cycle(i);
        } catch (e) {
          failures.push(`cycle ${i}: ${e.message}`);
        }
        done += 1;
        if (done === WARMUP) rssWarm = rss(server.child.pid);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    assert.deepEqual(failures, []);
    assert.equal(done, CYCLES);
    assert.equal(tokened, Math.ceil(CYCLES / 4));

    // Every connection is gone on the server too, and every room with it.
    const deadline = Date.now() + 10000;
    let status;
    while (Date.now() < deadline) {
      status = (await server.http('GET', '/metrics')).text;
      if (/^atrium_clients 0$/m.test(status) && !/^atrium_rooms\{type="counter"\} [1-9]/m.test(status)) break;
      await sleep(50);
    }
    assert.match(status, /^atrium_clients 0$/m);
    assert.doesNotMatch(status, /^atrium_rooms\{type="counter"\} [1-9]/m);

    const rssEnd = rss(server.child.pid);
    const seconds = (Date.now() - started) / 1000;
    const bound = Math.max(rssWarm * 1.2, rssWarm + 16 * MiB);
    const asan = underAsan(server.child.pid);
    t.diagnostic(`${CYCLES} cycles in ${seconds.toFixed(1)} s; RSS after ${WARMUP} cycles ` +
      `${(rssWarm / MiB).toFixed(1)} MiB, at the end ${(rssEnd / MiB).toFixed(1)} MiB ` +
      `(bound ${(bound / MiB).toFixed(1)} MiB${asan ? ', not asserted under ASan' : ''})`);
    if (!asan) {
      assert.ok(rssEnd <= bound, `RSS grew from ${rssWarm} to ${rssEnd} bytes (bound ${bound})`);
    }
  });

  it('exits cleanly (no leak or sanitizer report under ASan)', T, async () => {
    const code = await server.stop(30000);
    const stderr = server.stderr();
    assert.doesNotMatch(stderr, /AddressSanitizer|LeakSanitizer|runtime error:/, stderr.slice(-4000));
    assert.equal(code, 0, stderr.slice(-4000));
  });
});
