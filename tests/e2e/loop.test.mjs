// The server loop wakes for engine timers on its own, with no client traffic to wake it.
// Regression: a wake-up that came due before lws_service() started was consumed by lws,
// which then slept until the next packet or heartbeat (intervals ran at a fraction of
// their rate, ticks stalled). Several silent seconds make a missed wake-up show.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, sleep } from './helpers.mjs';

describe('server loop', () => {
  after(cleanup);

  it('keeps a 10 ms interval running at rate through silent seconds', { timeout: 30000 }, async () => {
    const server = await startServer();
    const [a] = await connectMany(server, 1);
    for (let round = 0; round < 4; round++) {
      const room = `timers:loop${round}`;
      await a.join(room);
      await a.act(room, 'every', 10);
      await sleep(1000);                          // nothing is sent meanwhile
      await a.act(room, 'stop');
      const { state } = (await server.http('GET', `/api/rooms/${room}`)).json;
      // 100 are due; a stalled loop gave ~20. The bound leaves room for a slow (ASan) build.
      assert.ok(state.beats >= 50, `round ${round}: ${state.beats} beats in 1 s at a 10 ms interval`);
      await a.leave(room);
    }
  });
});
