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
  ]) {
    it(`${fixture}.${method}: ${code}, nothing kept, and the healthy room barely notices`, T, async () => {
      const room = `${fixture}:${uid()}`;
      const { state } = await hostile.join(room);
      const worst = await whileBystanderWorks(async () => {
        await hostile.fails({ op: 'call', room, method, args: [] }, code, 10000);
      });
      assert.deepEqual((await hostile.sync(room)).state, state, 'the failed call changed nothing');
      // One budget (100 ms) plus scheduling: the process never stalled for long.
      assert.ok(worst < 1500, `the healthy room answered within ${worst} ms`);
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

  it('syntax_error and half_written: joins get script_error naming the file and line', T, async () => {
    const syntax = await hostile.fails({ op: 'join', room: `syntax_error:${uid()}` }, 'script_error');
    assert.match(syntax.message, /syntax_error\.lua:4:/);
    const half = await hostile.fails({ op: 'join', room: `half_written:${uid()}` }, 'script_error');
    assert.match(half.message, /half_written\.lua:\d+:/);
    assert.equal(typeof (await bystander.act(healthy, 'add')), 'number');
  });
});
