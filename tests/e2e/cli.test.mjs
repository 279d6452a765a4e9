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

// Runs the real binary to its end: {code, out, err}. ATRIUM_* settings from the shell
// stay out, as for startServer (helpers.mjs).
function atrium(args, { cwd } = {}) {
  const env = Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => !k.startsWith('ATRIUM_') || k === 'ATRIUM_LUA_PATH'));
  const r = spawnSync(BIN, args, { cwd, env, encoding: 'utf8', timeout: 10000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// A scratch tree {base}/game/rooms with the given scripts, and {base}/work to run from.
function gameTree(files) {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-check-'));
  tempDirs.push(base);
  fs.mkdirSync(path.join(base, 'game', 'rooms'), { recursive: true });
  fs.mkdirSync(path.join(base, 'work'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(base, 'game', 'rooms', name), text);
  return base;
}

// A room with the mistakes of a room author's first hour, one per line.
const firstHour = [
  'local R = { defaultState = { n = 0 } }',            // 1
  'function R:OnLeave(ctx) end',                        // 2: case
  'function R:onLave(ctx) end',                         // 3: a typo
  'R.action = {}',                                      // 4: actions, singular
  'function R.action.go(self, ctx) return 1 end',       // 5
  'function R:onTick(dt) self.state.n = 1 end',         // 6: no options.tickRate
  'function R:onJoin(ctx)',                             // 7
  '  conut = conut + 1',                                // 8: an undeclared global
  '  tabel.insert({}, 1)',                              // 9: a misspelled library
  'end',
  'return R',
].join('\n');

describe('atrium check: what a room author gets wrong in the first hour', () => {
  after(() => {
    for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('names near misses of hooks and fields, onTick without tickRate and undeclared globals, as file:line with the path as given', T, () => {
    const base = gameTree({ 'hello.lua': firstHour });
    const r = atrium(['check', '../game/rooms'], { cwd: path.join(base, 'work') });
    assert.equal(r.code, 1, r.out + r.err);
    const lines = r.out.trim().split('\n');
    const f = '../game/rooms/hello.lua';
    assert.deepEqual(lines, [
      `${f}:2: 'OnLeave' is never called: did you mean 'onLeave'?`,
      `${f}:3: 'onLave' is never called: did you mean 'onLeave'?`,
      `${f}:4: 'action' is never read by the engine: did you mean 'actions'? (clients can call only functions in actions)`,
      `${f}:6: onTick never runs: options.tickRate is not set (set it to the ticks per second you want: options = { tickRate = 20 })`,
      `${f}:8: undeclared global 'conut' (read and assigned): this line fails when it runs (declare it with local, or keep it in self.state or self.meta)`,
      `${f}:9: undeclared global 'tabel': this line fails when it runs (did you mean 'table'?)`,
      'checked 1 room script in ../game/rooms: 6 problems',
    ]);
  });

  it('says why a *.lua file whose name is no room type is not loaded, and what a valid name is', T, () => {
    const base = gameTree({ 'my room.lua': 'return {}', 'fine.lua': 'return {}' });
    const r = atrium(['check', '../game/rooms/'], { cwd: path.join(base, 'work') });
    assert.equal(r.code, 1, r.out + r.err);
    assert.deepEqual(r.out.trim().split('\n'), [
      "../game/rooms/my room.lua: not loaded: 'my room' is not a valid room type name (the file name is the TYPE"
        + " that clients join as TYPE:INSTANCE: 1 to 64 of A-Z a-z 0-9 _ - . @); ' ' is not allowed; rename it,"
        + ' e.g. to my_room.lua',
      'checked 1 room script in ../game/rooms/ (1 file skipped): 1 problem',
    ]);
  });

  it('reports the same findings in GET /api/status when the server loads the script', T, async () => {
    const rooms = tempRooms({ 'hello.lua': firstHour });
    const server = await startServer({ rooms });
    const status = (await server.http('GET', '/api/status')).json;
    const hello = status.types.find((t) => t.name === 'hello');
    assert.equal(hello.error, null);
    assert.equal(hello.warnings.length, 6, hello.warnings.join('\n'));
    assert.ok(hello.warnings.some((w) => w.endsWith("hello.lua:9: undeclared global 'tabel': this line fails when it runs (did you mean 'table'?)")),
      hello.warnings.join('\n'));
    await server.stop();
    fs.rmSync(rooms, { recursive: true, force: true });
  });
});

describe('atrium new and serve: usage and startup errors', () => {
  after(async () => {
    await cleanup();
  });

  it('atrium new without NAME prints its usage and exits 2, writing nothing', T, () => {
    const base = gameTree({});
    const work = path.join(base, 'work');
    const r = atrium(['new'], { cwd: work });
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.err, /^usage: atrium new NAME \[--dir DIR\]\n/);
    assert.equal(r.out, '');
    assert.deepEqual(fs.readdirSync(work), [], 'no rooms directory was made');
  });

  it('when the port is in use, says so in one line without libwebsockets\' log and exits nonzero', T, async () => {
    const rooms = tempRooms({ 'plain.lua': 'return { actions = {} }' });
    const first = await startServer({ rooms });
    const r = atrium(['serve', '--rooms', rooms, '--port', String(first.port)]);
    assert.equal(r.code, 1, r.err);
    assert.equal(r.err, `atrium: address already in use: 127.0.0.1:${first.port} (another server? try --port 0)\n`);
    assert.equal(r.out, '', 'it never said it was listening');
    assert.equal((await first.http('GET', '/healthz')).status, 200, 'the first server is untouched');
    await first.stop();
    fs.rmSync(rooms, { recursive: true, force: true });
  });

  it('an address this machine does not have is one line too', T, () => {
    const rooms = tempRooms({});
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): on no interface, so bind() fails at once.
    const r = atrium(['serve', '--rooms', rooms, '--port', '0', '--host', '192.0.2.1']);
    assert.equal(r.code, 1, r.err);
    assert.equal(r.err, 'atrium: address not available: 192.0.2.1:0 (no interface of this machine has it; check --host)\n');
    fs.rmSync(rooms, { recursive: true, force: true });
  });
});
