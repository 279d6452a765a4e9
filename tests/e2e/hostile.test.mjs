// The hostile fixtures of tests/fixtures/rooms over real sockets: each offending room
// fails with the right code while a healthy room, served by the same process to another
// connection, keeps answering quickly (tests/unit/engine_fixtures_test.cpp: the engine alone).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { repo, startServer, cleanup, connectMany, tempRooms, uid } from './helpers.mjs';

const T = { timeout: 30000 };
const fixtures = path.join(repo, 'tests', 'fixtures', 'rooms');

describe('hostile room scripts', () => {
  let server;
  let hostile;
  let bystander;
  const healthy = `healthy:${uid()}`;

  before(async () => {
    const files = {};
    for (const f of fs.readdirSync(fixtures)) files[f] = fs.readFileSync(path.join(fixtures, f), 'utf8');
    server = await startServer({ rooms: tempRooms(files), args: ['--cpu-budget-ms', '100', '--room-memory-mb', '8'] });
    [hostile, bystander] = await connectMany(server, 2);
    await bystander.join(healthy);
  });
  after(cleanup);

  // Runs `work` while the bystander keeps calling the healthy room; returns its worst round trip.
  async function whileBystanderWorks(work) {
    let worst = 0;
    let running = true;
    const pinger = (async () => {
      while (running) {
        const t0 = Date.now();
        assert.equal(typeof (await bystander.act(healthy, 'add')), 'number');
        worst = Math.max(worst, Date.now() - t0);
      }
    })();
    try {
      await work();
    } finally {
      running = false;
      await pinger;
    }
    return worst;
  }

  for (const [fixture, method, code] of [
    ['loop_forever', 'spin', 'budget_exceeded'],
    ['loop_in_pcall', 'spin', 'budget_exceeded'],
    ['loop_in_pcall', 'nested', 'budget_exceeded'],
    ['alloc_bomb', 'bomb', 'budget_exceeded'],
    ['alloc_bomb', 'rep', 'budget_exceeded'],
    ['alloc_bomb', 'concat', 'budget_exceeded'],
    // The side doors of the hardening issue, each once a hang or a crash of the server.
    ['escape_xpcall', 'handler_loops', 'budget_exceeded'],
    ['escape_xpcall', 'swallow_and_return', 'budget_exceeded'],
    ['escape_xpcall', 'pcall_and_return', 'budget_exceeded'],
    ['reentry', 'self_call', 'script_error'],
    ['reentry', 'self_call_caught', 'script_error'],
    ['reentry', 'gsub', 'script_error'],
    ['reentry', 'sort', null],
    ['reentry', 'tostring', null],
    ['strict_class', 'nope', 'unknown_method'],
    ['looping_meta', 'nope', 'unknown_method'],
  ]) {
    it(`${fixture}.${method}: ${code ?? 'an error'}, nothing kept, and the healthy room barely notices`, T, async () => {
      const room = `${fixture}:${uid()}`;
      const { state } = await hostile.join(room);
      const worst = await whileBystanderWorks(async () => {
        await hostile.fails({ op: 'call', room, method, args: [] }, code ?? undefined, 10000);
      });
      assert.deepEqual((await hostile.sync(room)).state, state, 'the failed call changed nothing');
      // One budget (100 ms) plus scheduling: the process never stalled for long.
      assert.ok(worst < 1500, `the healthy room answered within ${worst} ms`);
      await hostile.join(`${fixture}:${uid()}`);  // and joins still work (once a segfault)
    });
  }

  it('escape_attempts: no probe reaches anything outside the sandbox', T, async () => {
    const room = `escape_attempts:${uid()}`;
    await hostile.join(room);
    const reached = await hostile.act(room, 'probe');
    assert.ok(Object.keys(reached).length >= 15);
    for (const [what, got] of Object.entries(reached)) assert.equal(got, false, `${what} was reachable`);
  });

  it('escape_attempts: vandalizing string, atrium and _G changes nothing for another room type', T, async () => {
    const room = `escape_attempts:${uid()}`;
    await hostile.join(room);
    assert.equal(await hostile.act(room, 'vandalize'), 'pwned');
    assert.equal(await bystander.act(healthy, 'upper', 'abc'), 'ABC');
    assert.equal(await bystander.act(healthy, 'now'), true);
  });

  it('escape_xpcall_toplevel: the endless handler at top level fails that script only', T, async () => {
    const err = await hostile.fails({ op: 'join', room: `escape_xpcall_toplevel:${uid()}` }, 'script_error');
    assert.match(err.message, /budget_exceeded/);
  });

  it('doomed_twice: a room rejected and opened again in one call, forty times over', T, async () => {
    const room = `doomed_twice:${uid()}`;
    await hostile.join(room);
    for (let i = 0; i < 20; i++) {
      assert.ok(Array.isArray(await hostile.act(room, 'twice', 'join')));
      assert.ok(Array.isArray(await hostile.act(room, 'twice', 'call')));
    }
    assert.equal(typeof (await bystander.act(healthy, 'add')), 'number');
  });

  it('lobby_return: a dropped member is placed nowhere, and no later connection gets its frames', T, async () => {
    for (const how of ['drop', 'close']) {
      const [leaver] = await connectMany(server, 1);
      const table = `lobby_return:t${uid()}`;
      await leaver.join(table);
      if (how === 'drop') leaver.terminate();
      else await leaver.close(1000);
      const [next] = await connectMany(server, 1);
      await next.join(`lobby_return:t${uid()}`);
      // Traffic in the lobby: had the dropped client been placed there, its patches would
      // go to a freed connection (or a new one in its place).
      await hostile.request({ op: 'leave', room: 'lobby_return:lobby' });
      await hostile.join('lobby_return:lobby');
      await next.nothing((m) => m.room === 'lobby_return:lobby', 300);
      assert.equal(typeof (await bystander.act(healthy, 'add')), 'number');
    }
  });

  it('syntax_error and half_written: joins get script_error naming the file and line', T, async () => {
    const syntax = await hostile.fails({ op: 'join', room: `syntax_error:${uid()}` }, 'script_error');
    assert.match(syntax.message, /syntax_error\.lua:4:/);
    const half = await hostile.fails({ op: 'join', room: `half_written:${uid()}` }, 'script_error');
    assert.match(half.message, /half_written\.lua:\d+:/);
    assert.equal(typeof (await bystander.act(healthy, 'add')), 'number');
  });
});
