// The benchmark's own parts keep working: bench/load/atrium-load against the real server
// and the bench/rooms scripts, in tiny runs. Behaviour only (every line delivered, patches
// timed, memory read): the speed targets live in bench/, never in tests.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { BIN, repo, startServer, cleanup } from './helpers.mjs';

const T = { timeout: 60000 };
const LOAD = path.join(path.dirname(BIN), 'bench', 'atrium-load');

function load(server, args) {
  return new Promise((resolve, reject) => {
    execFile(LOAD, ['--port', String(server.port), '--server-pid', String(server.child.pid), ...args],
      { timeout: 45000 }, (error, stdout, stderr) => {
        if (error) return reject(new Error(`atrium-load failed: ${error.message}\n${stderr}`));
        resolve(JSON.parse(stdout));
      });
  });
}

describe('bench: the load generator and the bench rooms', { skip: !existsSync(LOAD) && `no ${LOAD}` }, () => {
  let server;
  before(async () => {
    server = await startServer({ rooms: path.join(repo, 'bench', 'rooms'),
      args: ['--pusher-app', 'bench:benchkey:benchsecret', '--pusher-limit', 'bench:client-events-per-s=1000'] });
  });
  after(cleanup);

  it('emit: every other member gets every message, latency is measured', T, async () => {
    const r = await load(server, ['--mode', 'emit', '--clients', '5', '--interval-us', '20000',
      '--warmup', '0.5', '--duration', '1.5']);
    assert.equal(r.alive, 5);
    assert.equal(r.server_errors, 0);
    assert.ok(r.delivered_pct >= 95 && r.delivered_pct <= 105, `delivered ${r.delivered_pct} %`);
    assert.ok(r.p99_us > 0 && r.server_cpu_pct >= 0 && r.server_rss_kb > 0);
  });

  it('call: the typed fan room emits each say to the other members', T, async () => {
    const r = await load(server, ['--mode', 'call', '--room', 'fan:e2e', '--clients', '4',
      '--interval-us', '20000', '--warmup', '0.5', '--duration', '1.5']);
    assert.equal(r.server_errors, 0);
    assert.ok(r.delivered_pct >= 95, `delivered ${r.delivered_pct} %`);
  });

  it('state: members get a patch per interval and see their own moves in it', T, async () => {
    // 20 members: more than 16 moves per interval, so patches carry the players map in one
    // op (state/compact.hpp) and the probes must find their entries inside it.
    const r = await load(server, ['--mode', 'state', '--room', 'field:e2e', '--clients', '20',
      '--probes', '4', '--interval-us', '50000', '--warmup', '0.5', '--duration', '2']);
    assert.equal(r.server_errors, 0);
    assert.ok(r.patches_per_s > 0.8 * r.expected_patches_per_s, `${r.patches_per_s} patches/s`);
    assert.ok(r.latency_samples > 0, 'probes found their own entries in the patches');
  });

  it('pusher: client events on a private channel reach every other subscriber, timed', T, async () => {
    const r = await load(server, ['--mode', 'pusher', '--room', 'pe2e', '--clients', '5',
      '--pusher-key', 'benchkey', '--pusher-secret', 'benchsecret',
      '--interval-us', '20000', '--warmup', '0.5', '--duration', '1.5']);
    assert.equal(r.alive, 5);
    assert.equal(r.server_errors, 0);
    assert.ok(r.delivered_pct >= 95 && r.delivered_pct <= 105, `delivered ${r.delivered_pct} %`);
    assert.ok(r.p99_us > 0);
  });

  it('churn: every leave and join of a presence member is told to the others', T, async () => {
    const r = await load(server, ['--mode', 'churn', '--room', 'ce2e', '--clients', '6',
      '--pusher-key', 'benchkey', '--pusher-secret', 'benchsecret',
      '--interval-us', '100000', '--warmup', '0.5', '--duration', '1.5']);
    assert.equal(r.alive, 6);
    assert.equal(r.server_errors, 0);
    assert.ok(r.sent_per_s > 0);
    assert.ok(r.delivered_pct >= 90 && r.delivered_pct <= 110, `delivered ${r.delivered_pct} %`);
  });

  it('idle: memory per joined connection is read from the server', T, async () => {
    const r = await load(server, ['--mode', 'idle', '--room', 'idle-e2e', '--clients', '50', '--hold', '1']);
    assert.equal(r.alive, 50);
    assert.ok(r.rss_after_kb >= r.rss_before_kb);
  });
});
