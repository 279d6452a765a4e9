// A listen-server: examples/embed/arena_host.cpp links libatrium (built from the installed
// tree by tests/embed/hygiene.sh, which scripts/test.sh runs before this suite), plays
// arena:main with its own LocalClient and takes WebSocket players in the same room.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { BIN, connect, repo, exampleRooms, sleep } from './helpers.mjs';

const T = { timeout: 20000 };
// build/'s, whichever server binary the rest of the suite runs (the ASan pass included).
const EXAMPLES = process.env.ATRIUM_EMBED_EXAMPLES ?? path.join(repo, 'build', 'examples');
const HOST = path.join(EXAMPLES, 'arena-host');
const LUA = path.join(EXAMPLES, 'lua');
const SCENARIO = path.join(repo, 'tests', 'embed', 'equivalence.scenario');

// The same line from two clients of one engine reads the same once the room id, the client
// id and the random welcome session and room epoch are put aside.
function normalized(line, room, client) {
  return line.split(room).join('ROOM').split(`"${client}"`).join('"CLIENT"')
    .replace(/"session":"[0-9a-f]{32}"/, '"session":"-"')
    .replace(/"epoch":"[0-9a-f]{16}"/g, '"epoch":"-"');  // random per room incarnation
}

function startHost(extra = [], seconds = 15) {
  assert.ok(fs.existsSync(HOST), `${HOST} is missing: build it with bash tests/embed/hygiene.sh`);
  const child = spawn(HOST, ['--rooms', exampleRooms, '--lua', LUA, '--port', '0', '--seconds', String(seconds), ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const port = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`arena-host did not listen within 5 s:\n${out}`)), 5000);
    child.stdout.on('data', () => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
  });
  return { child, port, output: () => out };
}

describe('embedded engine with a listener', () => {
  const hosts = [];
  after(() => { for (const h of hosts) h.child.kill('SIGKILL'); });

  it('puts a local player and a WebSocket player in one room, each seeing the other', T, async () => {
    const host = startHost();
    hosts.push(host);
    const port = await host.port;
    const ws = await connect(`ws://127.0.0.1:${port}/ws`);
    const joined = await ws.ok({ op: 'join', room: 'arena:main', payload: { name: 'Remote' } });
    const players = Object.values(joined.state.players).map((p) => p.name);
    assert.ok(players.includes('Host'), `the host's local player is in the room: ${players}`);
    assert.ok(players.includes('Remote'));
    // The local player walks (a move every 500 ms): the remote member gets its patches.
    const hostKey = Object.keys(joined.state.players).find((k) => joined.state.players[k].name === 'Host');
    await ws.next((m) => m.op === 'patch' && m.room === 'arena:main' &&
      m.ops.some((op) => op.path.startsWith(`/players/${hostKey}`)), 4000);
    // And the host sees the remote one in the room's state.
    const deadline = Date.now() + 5000;
    while (!/arena: .*Remote/.test(host.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(host.output(), /arena: .*Host.*Remote|arena: .*Remote.*Host/);
    await ws.close();
  });

  it('records a listen-server session (Options::record_path) that atrium replay gives back byte for byte', T, async () => {
    const record = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-embed-')), 'arena.record');
    const host = startHost(['--record', record], 3);
    hosts.push(host);
    const ws = await connect(`ws://127.0.0.1:${await host.port}/ws`);
    await ws.ok({ op: 'join', room: 'arena:main', payload: { name: 'Remote' } });
    for (let i = 0; i < 10; i += 1) {
      await ws.ok({ op: 'call', room: 'arena:main', method: 'move', args: [i % 3 - 1, 1] });
      await sleep(100);
    }
    const code = await new Promise((resolve) => host.child.on('exit', resolve));
    assert.equal(code, 0, host.output());
    const text = fs.readFileSync(record, 'utf8');
    assert.match(text, /\{"connect":"c1","user":"host"\}/);     // the LocalClient
    assert.match(text, /"method\\":\\"move\\"/);
    const run = await new Promise((resolve) => {
      const child = spawn(BIN, ['replay', record, '--verify'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      child.stderr.on('data', (d) => { out += d; });
      child.on('exit', (c) => resolve({ code: c, out }));
    });
    assert.equal(run.code, 0, run.out);
    assert.match(run.out, /^identical: /);
  });

  it('gives a LocalClient and a WebSocket client the same lines, byte for byte', T, async () => {
    assert.ok(fs.existsSync(path.join(EXAMPLES, 'equivalence-host')), 'build it with bash tests/embed/hygiene.sh');
    const child = spawn(path.join(EXAMPLES, 'equivalence-host'), [exampleRooms, LUA, SCENARIO],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    hosts.push({ child });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => { out += d; });
    const until = async (re, ms = 8000) => {
      for (const end = Date.now() + ms; !re.test(out); await sleep(20))
        if (Date.now() > end) throw new Error(`no ${re} from equivalence-host:\n${out}`);
    };
    await until(/listening (\d+)/);
    const port = Number(/listening (\d+)/.exec(out)[1]);

    // The WebSocket plays the scenario as the host will: each message after the previous
    // reply and 150 quiet ms.
    const ws = await connect(`ws://127.0.0.1:${port}/ws`);
    const wsRoom = 'counter:ws';
    const mark = () => ws.log.length;
    const settle = async (ref) => {
      if (ref !== undefined) await ws.next((m) => m.op === 'reply' && m.ref === ref, 5000);
      for (let seen = mark(); ; seen = mark()) {
        await sleep(150);
        if (mark() === seen) return;
      }
    };
    const scenario = fs.readFileSync(SCENARIO, 'utf8').split('\n').filter(Boolean);
    for (const text of scenario) {
      const message = text.split('$ROOM').join(wsRoom);
      ws.ws.send(message);
      await settle(JSON.parse(message).ref);
    }
    const wsLines = ws.log.map((m) => normalized(m.$line, wsRoom, ws.welcome.client));

    child.stdin.write('go counter:local\n');
    await until(/\ndone\n/);
    const local = out.split('\n').filter((l) => l.startsWith('line ')).map((l) => l.slice(5));
    const localClient = JSON.parse(local[0]).client;
    const localLines = local.map((l) => normalized(l, 'counter:local', localClient));
    assert.ok(wsLines.length >= scenario.length + 3, wsLines.join('\n'));
    assert.deepEqual(localLines, wsLines);
    await ws.close();
  });
});
