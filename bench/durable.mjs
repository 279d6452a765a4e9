// What durability costs (bench/README.md "Durable rooms"): the round trip of an action
// on a room with options.persist against the same room without it, in one run, at a fixed
// rate of actions spread over 20 connections, for --durability process and power; then the
// restore time of a room with many committed changes, and a resume that misses 1,000
// patches. Loopback only, bounded in count and time.
//
//   node bench/durable.mjs [BIN=build-rel/atrium]      (SECONDS=5 RATES="1000 10000" RESTORE=1000000)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const require = createRequire(path.join(repo, 'tests/e2e/package.json'));
const WebSocket = require('ws');

const BIN = path.resolve(repo, process.argv[2] ?? 'build-rel/atrium');
const SECONDS = Number(process.env.SECONDS ?? 5);
const RATES = (process.env.RATES ?? '1000 10000').split(' ').map(Number);
const RESTORE = Number(process.env.RESTORE ?? 1000000);
const CLIENTS = 20;

const ROOM = (persist) => `local R = { defaultState = { n = 0, last = 0 }, options = { persist = ${persist},
  patchRate = 50 }, actions = {} }
function R.actions.bump(self, ctx, v) self.state.n = self.state.n + 1; self.state.last = v; return self.state.n end
function R.actions.many(self, ctx, k) for i = 1, k do self.state.n = self.state.n + 1 end return self.state.n end
return R
`;

function tempRooms() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-bench-durable-'));
  fs.mkdirSync(path.join(dir, 'rooms'));
  fs.writeFileSync(path.join(dir, 'rooms', 'durable.lua'), ROOM(true));
  fs.writeFileSync(path.join(dir, 'rooms', 'memory.lua'), ROOM(false));
  fs.writeFileSync(path.join(dir, 'rooms', 'instant.lua'), ROOM(false).replace('patchRate = 50', 'patchRate = 0'));
  return dir;
}

async function start(dir, args) {
  const child = spawn(BIN, ['serve', '--rooms', path.join(dir, 'rooms'), '--port', '0', '--log-level', 'warn',
    '--data', path.join(dir, 'data'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const t0 = process.hrtime.bigint();
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on [^:]+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { child, port, startMs: Number(process.hrtime.bigint() - t0) / 1e6 };
}

function stop(server) {
  return new Promise((resolve) => {
    server.child.once('exit', resolve);
    server.child.kill('SIGTERM');
  });
}

function open(port) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const c = { ws, pending: new Map(), ref: 0, frames: [] };
    ws.on('message', (data) => {
      for (const line of data.toString().split('\n')) {
        if (!line) continue;
        const m = JSON.parse(line);
        if (m.op === 'welcome') { c.welcome = m; resolve(c); }
        c.frames.push(m);
        if (m.op === 'reply') { c.pending.get(m.ref)?.(m); c.pending.delete(m.ref); }
      }
    });
    ws.on('error', reject);
  });
}

function request(c, msg) {
  const ref = ++c.ref;
  return new Promise((resolve) => {
    c.pending.set(ref, resolve);
    c.ws.send(JSON.stringify({ ...msg, ref }));
  });
}

const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))];

// `rate` actions a second for SECONDS, spread over CLIENTS connections: round trips in ms.
async function load(port, room, rate) {
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => open(port)));
  for (const c of clients) await request(c, { op: 'join', room });
  const times = [];
  const interval = 1000 / (rate / CLIENTS);
  const until = Date.now() + SECONDS * 1000;
  await Promise.all(clients.map(async (c, k) => {
    let next = Date.now() + (interval * k) / CLIENTS;
    const inflight = [];
    while (Date.now() < until) {
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      next += interval;
      const t0 = process.hrtime.bigint();
      inflight.push(request(c, { op: 'call', room, method: 'bump', args: [k] })
        .then(() => times.push(Number(process.hrtime.bigint() - t0) / 1e6)));
    }
    await Promise.all(inflight);
  }));
  for (const c of clients) c.ws.close(1000);
  times.sort((a, b) => a - b);
  return { n: times.length, p50: pct(times, 0.5), p99: pct(times, 0.99) };
}

async function commitsOf(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(/atrium_store_commits_total (\d+)/.exec(text)?.[1] ?? 0);
}

const rows = [];
for (const durability of ['process', 'power']) {
  for (const rate of RATES) {
    const dir = tempRooms();
    const server = await start(dir, ['--durability', durability]);
    const mem = await load(server.port, 'memory:1', rate);
    const c0 = await commitsOf(server.port);
    const dur = await load(server.port, 'durable:1', rate);
    const commits = ((await commitsOf(server.port)) - c0) / SECONDS;
    await stop(server);
    fs.rmSync(dir, { recursive: true, force: true });
    rows.push({ durability, rate, mem, dur, commits });
    console.log(`${durability} ${rate}/s: memory p50 ${mem.p50.toFixed(2)} p99 ${mem.p99.toFixed(2)} ms (${mem.n}) | ` +
      `durable p50 ${dur.p50.toFixed(2)} p99 ${dur.p99.toFixed(2)} ms (${dur.n}) | added p99 ` +
      `${(dur.p99 - mem.p99).toFixed(2)} ms | ${commits.toFixed(0)} commits/s`);
  }
}

// Restore: one room with RESTORE committed changes (one action each, 500 in flight).
{
  const dir = tempRooms();
  let server = await start(dir, []);
  const c = await open(server.port);
  await request(c, { op: 'join', room: 'durable:big' });
  const t0 = Date.now();
  for (let sent = 0; sent < RESTORE;) {
    const batch = [];
    for (let k = 0; k < 500 && sent < RESTORE; ++k, ++sent) batch.push(request(c, { op: 'call', room: 'durable:big', method: 'bump', args: [sent] }));
    await Promise.all(batch);
  }
  const loadS = (Date.now() - t0) / 1000;
  c.ws.terminate();
  server.child.kill('SIGKILL');
  await new Promise((r) => server.child.once('exit', r));
  const bytes = ['atrium.db', 'atrium.db-wal'].map((f) => path.join(dir, 'data', f))
    .filter((f) => fs.existsSync(f)).reduce((n, f) => n + fs.statSync(f).size, 0);
  server = await start(dir, []);
  const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  const restoreS = Number(/atrium_restore_seconds ([0-9.e+-]+)/.exec(text)[1]);
  console.log(`restore: a room with ${RESTORE} committed changes (made in ${loadS.toFixed(1)} s, ` +
    `${(RESTORE / loadS).toFixed(0)}/s pipelined): ${restoreS.toFixed(3)} s, start to listening ` +
    `${server.startMs.toFixed(0)} ms, ${(bytes / 1048576).toFixed(1)} MiB on disk after kill -9`);
  await stop(server);
  fs.rmSync(dir, { recursive: true, force: true });
}

// Resume cost: a client that missed 1,000 patches (a log large enough to hold them).
{
  const dir = tempRooms();
  const server = await start(dir, ['--patch-log-count', '2000', '--patch-log-bytes', '10000000']);
  const a = await open(server.port);
  const joined = await request(a, { op: 'join', room: 'instant:1' });
  const b = await open(server.port);
  await request(b, { op: 'join', room: 'instant:1' });
  a.ws.terminate();
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 1000; ++i) await request(b, { op: 'call', room: 'instant:1', method: 'bump', args: [i] });
  const a2 = await open(server.port);
  const t0 = process.hrtime.bigint();
  const reply = await request(a2, { op: 'resume', session: a.welcome.session,
    rooms: { 'instant:1': { seq: joined.result.seq, epoch: joined.result.epoch } } });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const patches = a2.frames.filter((m) => m.op === 'patch').length;
  const entry = reply.result.rooms['instant:1'];
  console.log(`resume: missed ${entry.seq - joined.result.seq} patches, got ${patches} ` +
    `(recovered ${entry.recovered}) in ${ms.toFixed(2)} ms round trip`);
  await stop(server);
  fs.rmSync(dir, { recursive: true, force: true });
}
