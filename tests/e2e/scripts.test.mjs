// Script failures: a script that does not load, actions that raise, state that breaks the
// state rules, and the sandbox. Errors name file and line; a failed hook changes nothing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  startServer, cleanup, connectMany, uid, lineOf, assertScriptMessage, assertScriptError, testRooms,
} from './helpers.mjs';

const T = { timeout: 20000 };
const faulty = path.join(testRooms, 'faulty.lua');
const broken = path.join(testRooms, 'broken.lua');

describe('script errors', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('answers a join of a type whose script does not load with script_error naming file and line', T, async () => {
    const [a] = await connectMany(server, 1);
    const err = await a.fails({ op: 'join', room: `broken:${uid()}` }, 'script_error');
    assertScriptMessage(err.message, broken, lineOf(broken, 'broken:syntax'));
    await a.fails({ op: 'call', room: `broken:${uid()}`, method: 'x', args: [] }, 'not_member');
  });

  it('never opens a room of a broken type as an untyped room', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `broken:${uid()}`;
    await a.fails({ op: 'join', room }, 'script_error');
    await b.fails({ op: 'join', room }, 'script_error');
    await a.fails({ op: 'emit', room, event: 'x' }, 'not_member');
    const res = await server.http('GET', `/api/rooms/${room}`);
    assert.equal(res.status, 404);
  });

  it('keeps serving other rooms while one type is broken', T, async () => {
    const [a] = await connectMany(server, 1);
    await a.fails({ op: 'join', room: `broken:${uid()}` }, 'script_error');
    const r = await a.join(`secret:${uid()}`);
    assert.deepEqual(r.state, { members: 1, locked: false });
    assert.equal(await a.ok({ op: 'ping' }), 'pong');
  });

  it('answers an action that raised with script_error naming the file and line of the error', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `faulty:${uid()}`;
    await a.join(room);
    const boom = await a.fails({ op: 'call', room, method: 'fail', args: [] }, 'script_error');
    assertScriptError(boom, faulty, lineOf(faulty, 'faulty:fail'));
    assert.match(boom.message, /boom/);

    const idx = await a.fails({ op: 'call', room, method: 'indexNil', args: [] }, 'script_error');
    assertScriptError(idx, faulty, lineOf(faulty, 'faulty:indexNil'));
    assert.match(idx.message, /index/);
  });

  it('makes reading an undeclared global an error naming file and line', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `faulty:${uid()}`;
    await a.join(room);
    const err = await a.fails({ op: 'call', room, method: 'typo', args: [] }, 'script_error');
    assertScriptError(err, faulty, lineOf(faulty, 'faulty:typo'));
    assert.match(err.message, /undefinedGlobalName/);
  });

  it('rolls back state, events and timers of an action that raised after changing them', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `faulty:${uid()}`;
    const joined = await a.join(room);
    await b.join(room);
    assert.equal(await a.act(room, 'set', 5), 5);
    await b.untilView(room, (s) => s.value === 5);
    const before = await b.sync(room);

    const err = await a.fails({ op: 'call', room, method: 'changeThenFail', args: [] }, 'script_error');
    assertScriptError(err, faulty, lineOf(faulty, 'faulty:changeThenFail'));
    await Promise.all([a, b].map((x) => x.nothing((m) => m.op === 'event' && m.event === 'leaked', 250, 0)));
    const after = await b.sync(room);
    assert.equal(after.seq, before.seq, 'a failed action must not advance seq');
    assert.deepEqual(after.state, { value: 5, note: 'clean' });
    assert.equal(joined.state.note, 'clean');
    // The timer it set (10 ms) was dropped with the rest.
    await b.nothing((m) => m.op === 'patch' && m.room === room && m.seq > before.seq, 150, 0);
    assert.deepEqual((await b.sync(room)).state, { value: 5, note: 'clean' });
  });

  it('treats a function in state as script_error and rolls it back', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `faulty:${uid()}`;
    await a.join(room);
    const err = await a.fails({ op: 'call', room, method: 'functionInState', args: [] }, 'script_error');
    assert.match(err.message, /faulty\.lua/);
    assert.deepEqual((await a.sync(room)).state, { value: 0, note: 'clean' });
  });

  it('treats a string that is not UTF-8 in state as script_error and rolls it back', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `faulty:${uid()}`;
    await a.join(room);
    await a.fails({ op: 'call', room, method: 'badUtf8InState', args: [] }, 'script_error');
    assert.deepEqual((await a.sync(room)).state, { value: 0, note: 'clean' });
    assert.deepEqual(a.badLines, []);
  });

  it('treats NaN in state as script_error and rolls it back', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `faulty:${uid()}`;
    await a.join(room);
    await a.fails({ op: 'call', room, method: 'nanInState', args: [] }, 'script_error');
    assert.deepEqual((await a.sync(room)).state, { value: 0, note: 'clean' });
  });

  it('keeps a room usable after its action failed', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `faulty:${uid()}`;
    await a.join(room);
    await a.fails({ op: 'call', room, method: 'fail', args: [] }, 'script_error');
    assert.equal(await a.act(room, 'set', 7), 7);
    await a.untilView(room, (s) => s.value === 7);
  });
});

describe('sandbox', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('hides io, debug, require, load and friends, and keeps only os.time, os.clock, os.date', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `sandbox:${uid()}`;
    await a.join(room);
    const seen = await a.act(room, 'probe');
    for (const name of ['io', 'debug', 'ffi', 'jit', 'require', 'load', 'loadstring', 'dofile',
      'loadfile', 'getfenv', 'setfenv', 'newproxy', 'module',
      'os.execute', 'os.getenv', 'os.exit', 'string.dump']) {
      assert.equal(seen[name], 'nil', `${name} must not be visible to a room script`);
    }
    for (const name of ['os.time', 'os.clock', 'string.format', 'table.insert', 'math.floor', 'atrium.now']) {
      assert.equal(seen[name], 'function', `${name} must be visible to a room script`);
    }
  });

  it('refuses collectgarbage("stop") with script_error', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `sandbox:${uid()}`;
    await a.join(room);
    await a.fails({ op: 'call', room, method: 'stopCollector', args: [] }, 'script_error');
  });

  it('refuses an assignment to an undeclared global with script_error naming file and line', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `sandbox:${uid()}`;
    await a.join(room);
    const err = await a.fails({ op: 'call', room, method: 'setGlobal', args: [] }, 'script_error');
    const file = path.join(testRooms, 'sandbox.lua');
    assertScriptError(err, file, lineOf(file, 'sandbox:setGlobal'));
  });

  it('gives math.random numbers in [0, 1)', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `sandbox:${uid()}`;
    await a.join(room);
    const xs = await a.act(room, 'randoms', 50);
    assert.equal(xs.length, 50);
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    assert.ok(new Set(xs).size > 40, 'numbers vary');
  });
});
