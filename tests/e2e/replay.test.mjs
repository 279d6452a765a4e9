// Record and replay (docs/embedding.md "Record and replay"): `atrium serve --record FILE`
// under real WebSocket and HTTP traffic, then `atrium replay FILE --verify` in fresh
// processes, each of which must give every client the same bytes.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, cleanup, exampleRooms, here, startServer, tempRooms } from './helpers.mjs';

after(cleanup);

const INPUTS_PER_ROOM = Number(process.env.ATRIUM_REPLAY_INPUTS ?? 1000);
const REPLAYS = Number(process.env.ATRIUM_REPLAYS ?? 20);

function tempFile(name) {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-record-')), name);
}

// Runs `atrium replay ARGS...`; resolves {code, stdout, stderr}.
function replay(args, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['replay', ...args], { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`replay ran past ${timeoutMs} ms`)); }, timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

// A small deterministic PRNG (mulberry32): the same traffic on every run of the test.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = (r, list) => list[Math.floor(r() * list.length)];

// One random input for a room of `type`, as [kind, ...]: mostly actions with plausible and
// implausible arguments, some joins and leaves, some malformed messages.
function randomInput(r, type) {
  const room = `${type}:r${Math.floor(r() * 2)}`;
  const roll = r();
  if (roll < 0.08) return { op: 'join', room, payload: { name: pick(r, ['ann', 'bo', '', 'x'.repeat(40), 7]), title: 'T', password: pick(r, [undefined, 'pw']) } };
  if (roll < 0.12) return { op: 'leave', room };
  if (roll < 0.14) return { raw: pick(r, ['{"op":"call"', '[]', '{"op":"nope","ref":1}', '\u00ff']) };
  if (roll < 0.16) return { op: 'sync', room };
  const actions = {
    counter: () => pick(r, [['increment', Math.floor(r() * 5)], ['decrement', 1], ['reset'], ['myBumps'], ['increment', 'x'], ['nope']]),
    chat: () => pick(r, [['send', `hi ${Math.floor(r() * 100)}`], ['send', ''], ['send', 'y'.repeat(600)], ['members']]),
    arena: () => pick(r, [['move', r() * 2 - 1, r() * 2 - 1], ['move', 3, 4], ['move', 'a', 1], ['move', 0, 0]]),
  };
  const [name, ...args] = actions[type]();
  return { op: 'call', room, method: name, args };
}

// Random traffic to the example rooms: `count` inputs over six connections (some dropped
// and opened again), an operator's emit now and then, each reply awaited so that the
// server sees them in this order.
async function drive(server, count, seed) {
  const r = rng(seed);
  const clients = [];
  for (let i = 0; i < 6; i += 1) clients.push(await server.connect());
  let ref = 1;
  for (let n = 0; n < count; n += 1) {
    const type = ['counter', 'chat', 'arena'][n % 3];
    let c = pick(r, clients);
    if (r() < 0.01) {                             // a dropped connection, and a new one
      const i = clients.indexOf(c);
      if (r() < 0.5) await c.close(); else c.terminate();
      clients[i] = await server.connect();
      c = clients[i];
    }
    if (n % 97 === 50) {                          // an operator's emit over HTTP
      const res = await server.http('POST', `/api/rooms/${type}:r0/emit`, { event: 'note', data: { n } },
        { authorization: 'Bearer tok' });
      assert.ok(res.status === 200 || res.status === 404, res.text);
      continue;
    }
    const input = randomInput(r, type);
    if (input.raw) {
      c.sendRaw(input.raw);
      continue;
    }
    // Awaiting each reply keeps the record's order the order sent here.
    await c.request({ ...input, ref: ref++ }, 8000);
  }
}

describe('record and replay', () => {
  test(`records the example rooms under ${INPUTS_PER_ROOM} random inputs each, and ${REPLAYS} fresh replays give the same bytes`, { timeout: 240000 }, async () => {
    const record = tempFile('examples.record');
    const server = await startServer({ rooms: exampleRooms, args: ['--record', record, '--admin-token', 'tok'] });
    await drive(server, INPUTS_PER_ROOM * 3, 17);
    assert.equal(await server.stop(), 0);
    const lines = fs.readFileSync(record, 'utf8').split('\n').filter(Boolean);
    const header = JSON.parse(lines[0]);
    assert.equal(header.atrium_record, 1);
    assert.equal(header.rooms_dir, 'rooms');
    const kinds = new Map();
    for (const l of lines.slice(1)) {
      const k = Object.keys(JSON.parse(l))[0];
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    for (const k of ['time', 'script', 'connect', 'message', 'disconnect', 'timers', 'out', 'http', 'result', 'shutdown'])
      assert.ok(kinds.get(k) > 0, `the record has no "${k}" entry: ${JSON.stringify([...kinds])}`);
    assert.ok(kinds.get('message') >= INPUTS_PER_ROOM * 2, `${kinds.get('message')} messages recorded`);

    // Fresh processes, two at a time (the machine has two cores).
    const runs = [];
    for (let i = 0; i < REPLAYS; i += 2) {
      const batch = await Promise.all([replay([record, '--verify']), ...(i + 1 < REPLAYS ? [replay([record, '--verify'])] : [])]);
      runs.push(...batch);
    }
    for (const run of runs) {
      assert.equal(run.code, 0, `replay diverged:\n${run.stderr}${run.stdout}`);
      assert.match(run.stdout, /^identical: \d+ inputs, \d+ output entries/);
    }
    // --out writes what the record has, entry for entry.
    const out = tempFile('out.jsonl');
    const written = await replay([record, '--out', out]);
    assert.equal(written.code, 0, written.stderr);
    const recordedOutputs = lines.slice(1).filter((l) => /^\{"(out|closed|result|error)":/.test(l));
    assert.deepEqual(fs.readFileSync(out, 'utf8').split('\n').filter(Boolean), recordedOutputs);
  });

  test('catches a room whose output depends on the process, at the input that shows it', { timeout: 60000 }, async () => {
    // next() order over string keys follows the per-process hash seed, and a table's address
    // differs with every process: a room that answers with either is not replayable.
    const rooms = tempRooms({
      'luck.lua': `local Luck = { defaultMeta = { names = {} } }
Luck.actions = {}
function Luck:onCreate()
  for _, n in ipairs({ "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta" }) do
    self.meta.names[n] = true
  end
end
function Luck.actions.ping(self, ctx) return "pong" end
function Luck.actions.draw(self, ctx) return { first = next(self.meta.names), where = tostring({}) } end
return Luck
`,
    });
    const record = tempFile('luck.record');
    const server = await startServer({ rooms, args: ['--record', record] });
    const c = await server.connect();
    await c.ok({ op: 'join', room: 'luck:a' });
    for (let i = 0; i < 5; i += 1) await c.ok({ op: 'call', room: 'luck:a', method: 'ping', args: [] });
    await c.ok({ op: 'call', room: 'luck:a', method: 'draw', args: [] });
    await c.ok({ op: 'call', room: 'luck:a', method: 'ping', args: [] });
    assert.equal(await server.stop(), 0);

    const lines = fs.readFileSync(record, 'utf8').split('\n');
    const drawLine = lines.findIndex((l) => l.startsWith('{"message"') && l.includes('draw')) + 1;
    assert.ok(drawLine > 0, 'the draw call is in the record');
    const inputNumber = lines.slice(1, drawLine).filter((l) => /^\{"(connect|message|binary|disconnect|timers|pass|reload|http|shutdown)":/.test(l)).length;
    const run = await replay([record, '--verify']);
    assert.equal(run.code, 1, `the replay should have diverged:\n${run.stdout}${run.stderr}`);
    assert.match(run.stderr, new RegExp(`diverged at input ${inputNumber} \\(record line ${drawLine}\\)`));
    assert.match(run.stderr, /recorded: \{"out":"c1","line":\{"op":"reply"/);
    assert.match(run.stderr, /replayed: \{"out":"c1","line":\{"op":"reply"/);
  });

  test('replays hot reloads, a deleted script, timers and operator calls as they happened', { timeout: 60000 }, async () => {
    const v1 = `local T = { defaultState = { n = 0, v = 1 } }
T.actions = {}
function T.actions.bump(self, ctx, by) self.state.n = self.state.n + by; return self.state end
function T:add(extra) self.state.n = self.state.n + extra; return self.state.n end
function T:onJoin(ctx) self:setTimeout(30, function() self.state.late = true end) end
return T
`;
    const rooms = tempRooms({ 'tally.lua': v1, 'other.lua': 'return { actions = { hi = function() return 1 end } }\n' });
    const record = tempFile('reload.record');
    const server = await startServer({ rooms, args: ['--record', record] });
    const c = await server.connect();
    await c.ok({ op: 'join', room: 'tally:a' });
    await c.ok({ op: 'call', room: 'tally:a', method: 'bump', args: [2] });
    await c.until(() => c.view('tally:a')?.state.late === true);
    fs.writeFileSync(path.join(rooms, 'tally.lua'), v1.replace('v = 1', 'v = 2').replace('self.state.n + by', 'self.state.n + 10 * by'));
    // The watcher reloads it: the next call runs the new code.
    let result;
    for (let i = 0; i < 100; i += 1) {
      result = await c.ok({ op: 'call', room: 'tally:a', method: 'bump', args: [1] });
      if (result.n >= 10) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(result.n >= 10, 'the reloaded script ran');
    fs.unlinkSync(path.join(rooms, 'other.lua'));
    const reloaded = await server.http('POST', '/api/reload');
    assert.equal(reloaded.status, 200, reloaded.text);
    const called = await server.http('POST', '/api/rooms/tally:a/call/add', { args: [3] });
    assert.equal(called.status, 200, called.text);
    await c.fails({ op: 'join', room: 'other:x' }, 'not_found');
    assert.equal(await server.stop(), 0);

    const text = fs.readFileSync(record, 'utf8');
    assert.match(text, /\{"reload":"tally\.lua"\}/);
    assert.match(text, /\{"script":"other\.lua","gone":true\}/);
    assert.match(text, /\{"http":"call","room":"tally:a","method":"add","args":\[3\]\}/);
    // The rooms directory may change or vanish: the record carries every text it read.
    fs.rmSync(rooms, { recursive: true, force: true });
    const run = await replay([record, '--verify']);
    assert.equal(run.code, 0, run.stderr + run.stdout);
  });

  test('synctest: the example rooms never depend on pairs order; a room that does is named with its line', { timeout: 120000 }, async () => {
    const server = await startServer({ rooms: exampleRooms, args: ['--synctest', 'on', '--admin-token', 'tok'] });
    await drive(server, 600, 5);
    assert.doesNotMatch(server.output(), /synctest_mismatch/);
    await server.stop();

    const rooms = tempRooms({
      'luck.lua': `local Luck = { defaultState = { names = {}, first = false } }
Luck.actions = {}
function Luck.actions.add(self, ctx, name) self.state.names[name] = true end
function Luck.actions.draw(self, ctx)
  self.state.first = next(self.state.names)
end
return Luck
`,
    });
    const luck = await startServer({ rooms, args: ['--synctest', 'on'] });
    const c = await luck.connect();
    await c.ok({ op: 'join', room: 'luck:a' });
    for (const n of ['ann', 'bo', 'cy', 'di']) await c.ok({ op: 'call', room: 'luck:a', method: 'add', args: [n] });
    await c.ok({ op: 'call', room: 'luck:a', method: 'draw', args: [] });
    await luck.stop();
    assert.match(luck.output(), /synctest_mismatch room=luck:a synctest: action 'draw' at [^ ]*\/luck\.lua:4 changed the room's state differently/);
    assert.equal(luck.output().match(/synctest_mismatch/g).length, 1, luck.output());
  });

  test('refuses what is not a record, with the reason', async () => {
    const notRecord = tempFile('x.record');
    fs.writeFileSync(notRecord, '{"hello":1}\n');
    let run = await replay([notRecord, '--verify']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /x\.record:1: not an Atrium record/);
    run = await replay([path.join(os.tmpdir(), 'no-such-record-file'), '--verify']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /cannot read the record/);
    fs.writeFileSync(notRecord, '{"atrium_record":1,"rooms_dir":"rooms"}\n{"bogus":true}\n');
    run = await replay([notRecord]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /x\.record:2: unknown entry "bogus"/);
    run = await replay([]);
    assert.equal(run.code, 2);
  });
});
