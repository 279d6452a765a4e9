// The HTTP fallback against WebSocket (bench/README.md "HTTP fallback (issue 21)"): 100
// members of one room, 10 of them sending 20 events a second each (200 events, ~19,800
// deliveries a second), once with every member on a WebSocket and once on an event stream
// with POSTs, interleaved, against one server. Deliveries per second, latency percentiles
// (send to receipt, one clock: one process), server CPU (/proc). Loopback only, bounded.
//
//   node bench/fallback.mjs [BIN=build-bench/atrium]      (SECONDS=10 ROUNDS=2 MEMBERS=100)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const require = createRequire(path.join(repo, 'tests/e2e/package.json'));
const WebSocket = require('ws');

const BIN = path.resolve(repo, process.argv[2] ?? 'build-bench/atrium');
const SECONDS = Number(process.env.SECONDS ?? 10);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const MEMBERS = Number(process.env.MEMBERS ?? 100);
const SENDERS = 10;
const RATE = 20;              // events a second per sender
const WARMUP_MS = 2000;

const now = () => Number(process.hrtime.bigint() / 1000n);   // us
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cpuTicks(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);   // utime + stime
}

async function startServer() {
  const child = spawn(BIN, ['serve', '--rooms', path.join(repo, 'bench/rooms'), '--host', '127.0.0.1', '--port', '0',
    '--public', '', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 10000);
    const on = (d) => {
      out += d;
      const m = /listening on \S+:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
  });
  return { child, port, stop: () => { child.kill('SIGTERM'); } };
}

// A member over WebSocket: joins on connect; onEvent(t) per event received.
function wsMember(port, onEvent) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?join=fan`, 'atrium.v1');
    ws.on('message', (data) => {
      for (const line of data.toString().split('\n')) {
        if (line.includes('"op":"joined"')) resolve(member);
        else if (line.startsWith('{"op":"event"')) onEvent(JSON.parse(line).data);
      }
    });
    ws.on('error', reject);
    const member = {
      send: (t) => ws.send(`{"op":"emit","room":"fan","event":"m","data":${t}}`),
      close: () => ws.terminate(),
    };
  });
}

// A member over the HTTP fallback: an event stream, and a POST per event (in order).
function sseMember(port, onEvent) {
  return new Promise((resolve, reject) => {
    const agent = new http.Agent({ keepAlive: false, maxSockets: 1 });
    let sendPath = null;
    const req = http.get({ host: '127.0.0.1', port, path: '/ws/events?join=fan', agent: false }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (block.startsWith('event: stream')) {
            sendPath = JSON.parse(block.slice(block.indexOf('data: ') + 6)).send;
          } else if (block.startsWith('data: {"op":"joined"')) {
            resolve(member);
          } else if (block.startsWith('data: {"op":"event"')) {
            onEvent(JSON.parse(block.slice(6)).data);
          }
        }
      });
    });
    req.on('error', reject);
    const member = {
      send: (t) => {
        const body = `{"op":"emit","room":"fan","event":"m","data":${t}}`;
        const post = http.request({ host: '127.0.0.1', port, path: sendPath, method: 'POST', agent,
          headers: { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) } }, (r) => r.resume());
        post.on('error', () => {});
        post.end(body);
      },
      close: () => req.destroy(),
    };
  });
}

async function run(server, transport) {
  const latencies = [];
  let delivered = 0;
  let recording = false;
  const onEvent = (t) => {
    if (!recording) return;
    delivered += 1;
    latencies.push(now() - t);
  };
  const make = transport === 'ws' ? wsMember : sseMember;
  const members = [];
  for (let i = 0; i < MEMBERS; ++i) members.push(await make(server.port, onEvent));
  const senders = members.slice(0, SENDERS);
  const timers = senders.map((m, i) => setTimeout(() => {
    m.timer = setInterval(() => m.send(now()), 1000 / RATE);
  }, (i * 1000) / RATE / SENDERS));
  await sleep(WARMUP_MS);
  const ticks0 = cpuTicks(server.child.pid);
  recording = true;
  const t0 = Date.now();
  await sleep(SECONDS * 1000);
  recording = false;
  const elapsed = (Date.now() - t0) / 1000;
  const cpu = ((cpuTicks(server.child.pid) - ticks0) / 100 / elapsed) * 100;
  timers.forEach(clearTimeout);
  for (const m of senders) clearInterval(m.timer);
  for (const m of members) m.close();
  await sleep(500);
  latencies.sort((a, b) => a - b);
  const p = (q) => (latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) / 1000;
  return { transport, delivered_per_s: delivered / elapsed, expected: SENDERS * RATE * (MEMBERS - 1), p50: p(0.5), p99: p(0.99), cpu };
}

const server = await startServer();
const rows = [];
try {
  for (let r = 0; r < ROUNDS; ++r) {
    for (const t of ['ws', 'sse']) rows.push(await run(server, t));
  }
} finally {
  server.stop();
}
console.log(`| transport | round | deliveries/s (expected) | p50, ms | p99, ms | server CPU |`);
console.log(`|---|--:|--:|--:|--:|--:|`);
rows.forEach((r, i) => console.log(`| ${r.transport === 'ws' ? 'WebSocket' : 'HTTP fallback'} | ${Math.floor(i / 2) + 1} | ` +
  `${r.delivered_per_s.toFixed(0)} (${r.expected}) | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.cpu.toFixed(1)} % |`));
const mean = (t, f) => rows.filter((r) => r.transport === t).reduce((s, r) => s + f(r), 0) / ROUNDS;
console.log(`\nHTTP fallback / WebSocket: server CPU ${(mean('sse', (r) => r.cpu) / mean('ws', (r) => r.cpu)).toFixed(2)}, ` +
  `p99 ${(mean('sse', (r) => r.p99) / mean('ws', (r) => r.p99)).toFixed(2)}`);
