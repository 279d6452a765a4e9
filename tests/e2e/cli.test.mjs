// The CLI contract others rely on: the "atrium listening on HOST:PORT" line, SIGTERM,
// settings from flags, ATRIUM_* variables and the config file (README.md "Settings"),
// heartbeats.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, startServer, cleanup, connectMany, tempRooms, uid, sleep } from './helpers.mjs';

const T = { timeout: 30000 };

const tempDirs = [];

// A --config file holding settings, in a temporary directory removed after the tests.
function configFile(settings) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-cfg-'));
  tempDirs.push(dir);
  const file = path.join(dir, 'atrium.json');
  fs.writeFileSync(file, JSON.stringify(settings));
  return file;
}

async function writeAllowed(server, token) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  return (await server.http('POST', '/api/reload', undefined, headers)).status;
}

describe('atrium serve', () => {
  after(async () => {
    await cleanup();
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('prints one "atrium listening on 127.0.0.1:PORT" line naming the port it picked for --port 0', T, async () => {
    const server = await startServer();
    assert.equal(server.host, '127.0.0.1', 'the default host is 127.0.0.1');
    assert.ok(server.port > 0 && server.port < 65536);
    const lines = server.stdout().split('\n').filter((l) => l.startsWith('atrium listening on'));
    assert.deepEqual(lines, [`atrium listening on 127.0.0.1:${server.port}`]);
    const health = await server.http('GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(await server.stop(), 0);
  });

  it('exits 2 naming the path when --rooms is missing or not a directory (no server with every room refused)', T, () => {
    const file = configFile({});
    for (const [rooms, why] of [[path.join(os.tmpdir(), `no-such-rooms-${uid()}`), 'no such directory'],
      [file, 'is not a directory']]) {
      const run = spawnSync(BIN, ['serve', '--rooms', rooms, '--port', '0'], { encoding: 'utf8', timeout: 10000 });
      assert.equal(run.status, 2, run.stderr);
      assert.equal(run.stderr.trim(), `atrium: --rooms ${rooms}: ${why}`);
      assert.equal(run.stdout, '', 'it never listened');
    }
  });

  it('takes --max-rooms-per-connection and --untyped off', T, async () => {
    const rooms = tempRooms({ 'plain.lua': 'return { actions = {} }' });
    const server = await startServer({ rooms, args: ['--max-rooms-per-connection', '2', '--untyped', 'off'] });
    const [a] = await connectMany(server, 1);
    const untyped = await a.fails({ op: 'join', room: `lobby-${uid()}` }, 'not_found');
    assert.match(untyped.message, /--untyped off/);
    await a.join(`plain:${uid()}`);
    const kept = `plain:${uid()}`;
    await a.join(kept);
    const third = await a.fails({ op: 'join', room: `plain:${uid()}` }, 'not_allowed');
    assert.match(third.message, /--max-rooms-per-connection/);
    await a.leave(kept);
    await a.join(`plain:${uid()}`);
  });

  it('serves while a room script fails to load', T, async () => {
    const server = await startServer();            // tests/e2e/rooms holds broken.lua
    assert.equal((await server.http('GET', '/healthz')).status, 200);
    const [a] = await connectMany(server, 1);
    assert.equal(await a.ok({ op: 'ping' }), 'pong');
    await server.stop();
  });

  it('on SIGTERM removes members with left reason closed, closes clients with 1001 and exits 0', T, async () => {
    const server = await startServer();
    const [a, b] = await connectMany(server, 2);
    const typed = `secret:${uid()}`;
    const untyped = `pubsub-${uid()}`;
    await a.join(typed);
    await b.join(untyped);
    const exit = server.stop(8000);
    const [ca, cb] = await Promise.all([a.closedWithin(6000), b.closedWithin(6000)]);
    assert.equal(ca.code, 1001);
    assert.equal(cb.code, 1001);
    const left = a.log.find((m) => m.op === 'left' && m.room === typed);
    assert.ok(left, 'a member of a typed room is told it left');
    assert.equal(left.reason, 'closed');
    assert.equal(await exit, 0);
  });

  it('limits client messages to --max-message-bytes', T, async () => {
    const server = await startServer({ args: ['--max-message-bytes', '1024'] });
    const [a, b] = await connectMany(server, 2);
    const msg = (size, ref) => {
      const head = `{"op":"ping","ref":"${ref}","pad":"`;
      return `${head}${'p'.repeat(size - head.length - 2)}"}`;
    };
    a.send(msg(1024, 'fits'));
    assert.equal((await a.next({ op: 'reply', ref: 'fits' })).result, 'pong');
    b.send(msg(1025, 'over'));
    assert.equal((await b.closedWithin(5000)).code, 1009);
    await server.stop();
  });

  it('takes the admin token from --admin-token', T, async () => {
    const server = await startServer({ args: ['--admin-token', 'from-flag'] });
    assert.equal(await writeAllowed(server), 401);
    assert.equal(await writeAllowed(server, 'from-flag'), 200);
    await server.stop();
  });

  it('takes the admin token from ATRIUM_ADMIN_TOKEN', T, async () => {
    const server = await startServer({ env: { ATRIUM_ADMIN_TOKEN: 'from-env' } });
    assert.equal(await writeAllowed(server), 401);
    assert.equal(await writeAllowed(server, 'from-env'), 200);
    await server.stop();
  });

  it('takes the admin token from the --config file under the key admin-token', T, async () => {
    const file = configFile({ 'admin-token': 'from-file' });
    const server = await startServer({ args: ['--config', file] });
    assert.equal(await writeAllowed(server), 401);
    assert.equal(await writeAllowed(server, 'from-file'), 200);
    await server.stop();
  });

  it('lets flags override the environment, and the environment override the config file', T, async () => {
    const file = configFile({ 'admin-token': 'from-file' });
    const all = await startServer({ args: ['--config', file, '--admin-token', 'from-flag'],
      env: { ATRIUM_ADMIN_TOKEN: 'from-env' } });
    assert.equal(await writeAllowed(all, 'from-flag'), 200);
    assert.equal(await writeAllowed(all, 'from-env'), 401);
    assert.equal(await writeAllowed(all, 'from-file'), 401);
    await all.stop();

    const envAndFile = await startServer({ args: ['--config', file], env: { ATRIUM_ADMIN_TOKEN: 'from-env' } });
    assert.equal(await writeAllowed(envAndFile, 'from-env'), 200);
    assert.equal(await writeAllowed(envAndFile, 'from-file'), 401);
    await envAndFile.stop();
  });

  it('announces --heartbeat-ms in welcome, drops a client silent for two intervals and keeps one that answers pings', T, async () => {
    const server = await startServer({ args: ['--heartbeat-ms', '1000'] });
    const [watcher] = await connectMany(server, 1);
    const [silent] = await connectMany(server, 1, { autoPong: false });
    assert.equal(watcher.welcome.heartbeat, 1000);
    const room = `tracker:${uid()}`;
    await watcher.join(room);
    await silent.join(room);
    const t0 = Date.now();
    await silent.closedWithin(8000);
    const dropped = Date.now() - t0;
    assert.ok(dropped >= 1000, `dropped after ${dropped} ms, before one interval passed`);
    await watcher.untilView(room, (s) => s.lastLeave !== false, 4000);
    assert.deepEqual(watcher.view(room).state.lastLeave, { client: silent.welcome.client, reason: 'disconnect' });
    await sleep(Math.max(0, 4000 - (Date.now() - t0)));
    assert.equal(watcher.closeInfo, null, 'a client that answers pings stays connected');
    assert.equal(await watcher.ok({ op: 'ping' }), 'pong');
    await server.stop();
  });
});
