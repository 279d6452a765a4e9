// self:setIn: members get the ops of the entry it wrote, and replaying them gives the
// server's state (docs/rooms.md "How the server finds what changed").
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, uid } from './helpers.mjs';

const T = { timeout: 30000 };

function patchOps(client, room, since) {
  return client.log.slice(since).filter((m) => m.op === 'patch' && m.room === room)
    .flatMap((m) => m.ops);
}

describe('setIn', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('sends a move as one replace of the mover\'s entry, and the replay is the server state', T, async () => {
    const [a, b, c] = await connectMany(server, 3);
    const room = `mover:${uid()}`;
    for (const x of [a, b, c]) await x.join(room);
    const [ida, idc] = [a.welcome.client, c.welcome.client];

    let since = b.mark();
    await a.act(room, 'move', 3, 4);
    await b.untilView(room, (s) => s.players[ida]?.x === 3);
    assert.deepEqual(patchOps(b, room, since),
      [{ op: 'replace', path: `/players/${ida}`, value: { x: 3, y: 4 } }]);

    since = b.mark();
    await c.act(room, 'nudge', 7);                  // one member of the entry: one op
    await b.untilView(room, (s) => s.players[idc]?.x === 7);
    assert.deepEqual(patchOps(b, room, since),
      [{ op: 'replace', path: `/players/${idc}/x`, value: 7 }]);

    since = b.mark();
    await c.leave(room);
    await b.untilView(room, (s) => !(idc in s.players));
    assert.deepEqual(patchOps(b, room, since), [{ op: 'remove', path: `/players/${idc}` }]);

    for (let i = 0; i < 10; i++) await a.act(room, 'move', i, -i);
    const synced = await a.sync(room);
    await b.untilView(room, synced.seq);
    const v = b.view(room);
    assert.deepEqual(v.gaps, []);
    assert.deepEqual(v.failures, []);
    assert.deepEqual(v.state, synced.state);
    const http = await server.http('GET', `/api/rooms/${encodeURIComponent(room)}`);
    assert.deepEqual(http.json.state, synced.state);
    assert.deepEqual(synced.state.players[ida], { x: 9, y: -9 });
  });

  it('fails a call whose path runs through a value that is not a table, and changes nothing', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `mover:${uid()}`;
    await a.join(room);
    const since = a.mark();
    const error = await a.fails({ op: 'call', room, method: 'tooDeep', args: [] }, 'script_error');
    assert.match(error.where, /^rooms\/mover\.lua:\d+$/);
    assert.equal(error.message, `setIn: state.players.${a.welcome.client}.x is a number, not a table`);
    await a.nothing((m) => m.op === 'patch' && m.room === room, 100, since);
  });
});
