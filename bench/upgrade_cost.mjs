// What deciding an upgrade costs the server (bench/README.md "Connecting (issue 18)"):
// the same number of WebSocket upgrades (connect, welcome, close) against build-rel's
// atrium with no checks, with a token of each algorithm, with rooms/_connect.lua, and with
// both, measured as server CPU per upgrade (/proc/PID/schedstat) in one run, as ratios to the
// plain upgrade. Loopback only, bounded: N upgrades per configuration.
//
//   node bench/upgrade_cost.mjs [N=2000] [BIN=build-rel/atrium]      (ROUNDS=3)
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const require = createRequire(path.join(repo, 'tests/e2e/package.json'));
const WebSocket = require('ws');

const N = Number(process.argv[2] ?? 2000);
const BIN = path.resolve(repo, process.argv[3] ?? 'build-rel/atrium');
const CONCURRENCY = 16;

const SECRET = crypto.randomBytes(32).toString('hex');
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
function sign(alg, key) {
  const data = `${b64({ alg, typ: 'JWT' })}.${b64({ sub: 'bench', exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  const sig = alg === 'HS256' ? crypto.createHmac('sha256', key).update(data).digest()
    : crypto.sign('sha256', Buffer.from(data), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${data}.${sig.toString('base64url')}`;
}

const GATE = `local G = {}
function G.onConnect(req)
  if req.cookies.banned then return false, "banned" end
  return { name = req.query.name or "guest", ip = req.ip }
end
return G
`;

// CPU time of the server's main thread in µs: /proc/PID/schedstat counts it in ns, where
// /proc/PID/stat's clock ticks (10 ms) would be too coarse for a few thousand upgrades.
function cpuUs(pid) {
  return Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
}

async function start(args, rooms) {
  const child = spawn(BIN, ['serve', '--rooms', rooms, '--port', '0', '--log-level', 'warn', ...args],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on [^:]+:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { child, port };
}

function upgrade(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('message', () => { ws.close(1000); });
    ws.once('close', resolve);
    ws.once('error', reject);
  });
}

async function run(name, args, rooms, query) {
  const { child, port } = await start(args, rooms);
  const url = `ws://127.0.0.1:${port}/ws${query}`;
  for (let i = 0; i < 50; ++i) await upgrade(url);  // warm-up
  const t0 = process.hrtime.bigint();
  const c0 = cpuUs(child.pid);
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < N) { next += 1; await upgrade(url); }
  }));
  const used = cpuUs(child.pid) - c0;
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  return { name, perSecond: N / wallS, cpuUsPerUpgrade: used / N };
}

const plainRooms = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-upg-'));
const gateRooms = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-upg-'));
fs.writeFileSync(path.join(gateRooms, '_connect.lua'), GATE);
const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-upg-keys-'));
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
fs.writeFileSync(path.join(keyDir, 'rsa.pem'), rsa.publicKey.export({ type: 'spki', format: 'pem' }));
fs.writeFileSync(path.join(keyDir, 'ec.pem'), ec.publicKey.export({ type: 'spki', format: 'pem' }));

const configs = [
  ['plain', [], plainRooms, ''],
  ['HS256 token', ['--jwt-secret', SECRET], plainRooms, `?token=${sign('HS256', SECRET)}`],
  ['RS256 token', ['--jwt-public-key', path.join(keyDir, 'rsa.pem')], plainRooms, `?token=${sign('RS256', rsa.privateKey)}`],
  ['ES256 token', ['--jwt-public-key', path.join(keyDir, 'ec.pem')], plainRooms, `?token=${sign('ES256', ec.privateKey)}`],
  ['_connect.lua', [], gateRooms, '?name=ada'],
  ['HS256 + _connect.lua', ['--jwt-secret', SECRET], gateRooms, `?name=ada&token=${sign('HS256', SECRET)}`],
];
// Rounds of every configuration in turn, the median of each: this VM's load drifts over a
// run, and a configuration measured only early or only late would carry that drift.
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const samples = new Map(configs.map(([name]) => [name, []]));
for (let round = 0; round < ROUNDS; ++round) {
  for (const [name, args, rooms, query] of configs) samples.get(name).push(await run(name, args, rooms, query));
}
const median = (xs, key) => xs.map((x) => x[key]).sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = configs.map(([name]) => ({
  name,
  perSecond: median(samples.get(name), 'perSecond'),
  cpuUsPerUpgrade: median(samples.get(name), 'cpuUsPerUpgrade'),
}));
const base = results[0].cpuUsPerUpgrade;
console.log(`${N} upgrades each, ${CONCURRENCY} at a time, ${path.relative(repo, BIN)}, median of ${ROUNDS} rounds`);
console.log('| upgrade | upgrades/s (wall) | server CPU per upgrade | ratio to plain |');
console.log('|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.name} | ${r.perSecond.toFixed(0)} | ${r.cpuUsPerUpgrade.toFixed(0)} µs | ${(r.cpuUsPerUpgrade / base).toFixed(2)} |`);
}
