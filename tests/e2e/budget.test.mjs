// CPU and memory budgets: a hook that runs away is stopped with budget_exceeded, its
// changes are rolled back, and nothing else notices (docs/rooms.md "The sandbox").
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, uid } from './helpers.mjs';

const T = { timeout: 30000 };

describe('budgets', () => {
  let server;
  before(async () => {
    server = await startServer({ args: ['--cpu-budget-ms', '100', '--room-memory-mb', '16'] });
  });
  after(cleanup);

  for (const [method, what] of [
    ['spin', 'an endless loop'],
    ['spinBehindPcall', 'an endless loop hidden behind pcall'],
    ['eat', 'unbounded allocation'],
  ]) {
    it(`stops ${what} with budget_exceeded and rolls its changes back`, T, async () => {
      const [a] = await connectMany(server, 1);
      const room = `hog:${uid()}`;
      await a.join(room);
      const started = Date.now();
      await a.fails({ op: 'call', room, method, args: [] }, 'budget_exceeded', 10000);
      assert.ok(Date.now() - started < 5000, 'stopped well before 5 s');
      assert.equal(await a.act(room, 'value'), 1);
      assert.deepEqual((await a.sync(room)).state, { value: 1 });
    });
  }

  it('leaves other rooms and connections working after a budget stop', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const hog = `hog:${uid()}`;
    const room = `secret:${uid()}`;
    await a.join(hog);
    await b.join(room);
    await a.fails({ op: 'call', room: hog, method: 'spin', args: [] }, 'budget_exceeded', 10000);
    assert.equal(await b.ok({ op: 'ping' }), 'pong');
    assert.equal(await b.act(room, 'isLocked'), false);
    const health = await server.http('GET', '/healthz');
    assert.equal(health.status, 200);
  });
});
