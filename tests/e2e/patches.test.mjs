// State sync: applying every patch in seq order to the join state gives exactly the
// server's public state; all members get the same bytes; batching (docs/protocol.md
// "Server to client", `patch`).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, uid, sleep } from './helpers.mjs';

const T = { timeout: 30000 };

function patchLines(client, room) {
  return client.log.filter((m) => m.op === 'patch' && m.room === room);
}

function assertCleanView(client, room) {
  const v = client.view(room);
  assert.ok(v, `client holds a view of ${room}`);
  assert.deepEqual(v.gaps, [], 'patches arrive with consecutive seqs');
  assert.deepEqual(v.failures, [], 'every patch applies cleanly (RFC 6902)');
  for (const s of v.syncs) {
    assert.equal(s.viewSeq, s.seq, `replayed seq ${s.viewSeq} when the sync reply said ${s.seq}`);
    assert.ok(s.equal, `replayed state differs from the sync state at seq ${s.seq}`);
  }
  return v;
}

describe('patches', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('replays to the state given by sync and by GET /api/rooms/:id, escaped keys and unicode included', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `weird:${uid()}`;
    await a.join(room);
    const steps = await a.act(room, 'stepCount');
    assert.ok(steps >= 10);
    const half = Math.floor(steps / 2);
    for (let i = 1; i <= half; i++) {
      await a.act(room, 'step', i);
      if (i % 2 === 0) await sleep(15);          // spread the changes over several patches
    }
    await b.join(room);
    for (let i = half + 1; i <= steps; i++) {
      await b.act(room, 'step', i);
      if (i % 2 === 0) await sleep(15);
    }
    await a.act(room, 'setState', { merged: { by: 'setState' }, ['a/b']: 'replaced by setState' });

    const synced = await a.sync(room);
    await b.untilView(room, synced.seq);
    const http = await server.http('GET', `/api/rooms/${encodeURIComponent(room)}`);
    assert.equal(http.status, 200);

    // a's replay is checked against the sync result at the moment the reply arrived
    // (view.syncs); b never synced, so its state comes from its join and patches only.
    const va = assertCleanView(a, room);
    assert.equal(va.syncs.length, 1);
    const vb = assertCleanView(b, room);
    assert.equal(vb.resets, 1, 'b was never sent a full state after its join');
    assert.equal(vb.seq, synced.seq);
    assert.deepEqual(vb.state, synced.state);
    assert.equal(http.json.seq, synced.seq);
    assert.deepEqual(http.json.state, synced.state);
    assert.equal(synced.state['a/b'], 'replaced by setState');
    assert.equal(synced.state['日本語'], 'こんにちは 👋');
    assert.equal(synced.state['ü/~'], 'both');
    assert.equal(synced.state[''], 'empty key');
    assert.deepEqual(synced.state.emptyArray, []);
    assert.deepEqual(synced.state.emptyObject, {});
    assert.deepEqual(synced.state.nested, ['now', 'an', 'array']);
    assert.equal(synced.state['~1'], undefined);

    assert.ok(va.patches >= 5, `expected several patches, got ${va.patches}`);
    const paths = patchLines(a, room).flatMap((p) => p.ops.map((o) => o.path));
    assert.ok(paths.some((p) => p.includes('~1')), `a "/" in a key is escaped as ~1: ${paths}`);
    assert.ok(paths.some((p) => p.includes('~0')), `a "~" in a key is escaped as ~0: ${paths}`);
  });

  it('uses only add, remove and replace ops, and increments seq by one per patch', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `weird:${uid()}`;
    const joined = await a.join(room);
    const steps = await a.act(room, 'stepCount');
    for (let i = 1; i <= steps; i++) {
      await a.act(room, 'step', i);
      await sleep(12);
    }
    const synced = await a.sync(room);
    const patches = patchLines(a, room);
    assert.ok(patches.length > 0);
    patches.forEach((p, i) => {
      assert.equal(p.seq, joined.seq + i + 1);
      assert.ok(Array.isArray(p.ops) && p.ops.length > 0, 'a patch carries ops');
      for (const op of p.ops) assert.ok(['add', 'remove', 'replace'].includes(op.op), `op ${op.op}`);
    });
    assert.equal(patches.at(-1).seq, synced.seq);
  });

  it('sends every member the same bytes for a patch', T, async () => {
    const [a, b, c] = await connectMany(server, 3);
    const room = `weird:${uid()}`;
    for (const x of [a, b, c]) await x.join(room);
    const steps = await a.act(room, 'stepCount');
    for (let i = 1; i <= steps; i++) await c.act(room, 'step', i);
    const synced = await a.sync(room);
    await Promise.all([b, c].map((x) => x.untilView(room, synced.seq)));
    const bySeq = (x) => new Map(patchLines(x, room).map((p) => [p.seq, p.$line]));
    const [pa, pb, pc] = [a, b, c].map(bySeq);
    assert.ok(pa.size > 0);
    assert.deepEqual([...pb.keys()], [...pa.keys()]);
    assert.deepEqual([...pc.keys()], [...pa.keys()]);
    for (const [seq, line] of pa) {
      assert.equal(pb.get(seq), line, `patch ${seq} differs between members`);
      assert.equal(pc.get(seq), line, `patch ${seq} differs between members`);
    }
  });

  it('sends no patch when a hook changed nothing', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `weird:${uid()}`;
    const joined = await a.join(room);
    await a.act(room, 'setState', { '~': 'tilde' });    // the value it already has
    await a.act(room, 'stepCount');
    await a.nothing((m) => m.op === 'patch' && m.room === room && m.seq > joined.seq, 200, 0);
    assert.equal((await a.sync(room)).seq, joined.seq);
  });

  it('batches the changes of several calls inside one patch interval into fewer patches', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `batch:${uid()}`;
    await a.join(room);
    await b.join(room);
    const results = await Promise.all(Array.from({ length: 6 }, () => a.act(room, 'inc')));
    assert.deepEqual(results, [1, 2, 3, 4, 5, 6]);
    await b.untilView(room, (s) => s.n === 6, 3000);
    const v = assertCleanView(b, room);
    assert.deepEqual(v.state, { n: 6, log: [1, 2, 3, 4, 5, 6] });
    const count = patchLines(b, room).length;
    assert.ok(count >= 1 && count <= 2, `6 changes inside one 300 ms interval came as ${count} patches`);
  });

  it('sends one op with the value where an interval changed most entries of a map', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `crowd:${uid()}`;
    await a.join(room);
    await b.join(room);
    const ids = Array.from({ length: 40 }, (_, i) => `p${i}`);
    await Promise.all(ids.map((id, i) => a.act(room, 'move', id, i)));
    await b.untilView(room, (s) => Object.keys(s.players).length === 40, 3000);
    let ops = patchLines(b, room).flatMap((p) => p.ops);
    assert.ok(ops.some((o) => o.path === '/players'), 'the map went as one op');
    assert.ok(ops.length < 40, `${ops.length} ops for 40 entries`);

    // Two entries of forty: per-entry ops, smaller than the map.
    const before = patchLines(b, room).length;
    await Promise.all(['p3', 'p7'].map((id) => a.act(room, 'move', id, 100)));
    await b.untilView(room, (s) => s.players.p3.x === 100 && s.players.p7.x === 100, 3000);
    ops = patchLines(b, room).slice(before).flatMap((p) => p.ops);
    assert.deepEqual(ops.map((o) => o.path).sort(), ['/players/p3', '/players/p7']);
    const v = assertCleanView(b, room);
    assert.equal(Object.keys(v.state.players).length, 40);
    assert.deepEqual(v.state.players.p3, { x: 100, y: -100 });
  });

  it('delivers a patch at the patch interval, not only on sync', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `batch:${uid()}`;
    await a.join(room);
    await b.join(room);
    await a.act(room, 'inc');
    const t0 = Date.now();
    await b.untilView(room, (s) => s.n === 1, 3000);
    assert.ok(Date.now() - t0 < 2000, 'patch arrived within a few intervals');
  });

  it('flushes pending changes as a patch before answering sync with the state at its seq', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `batch:${uid()}`;
    await a.join(room);
    await b.join(room);
    await a.act(room, 'inc');
    const synced = await a.sync(room);            // well inside the 300 ms interval
    assert.deepEqual(synced.state, { n: 1, log: [1] });
    // The replayed view had reached the sync seq when the reply arrived.
    assertCleanView(a, room);
    assert.equal(a.view(room).syncs.length, 1);
    await b.untilView(room, synced.seq);
    assert.deepEqual(b.view(room).state, synced.state);
  });

  it('gives a joiner the state at its seq while changes are pending, and it replays on from there', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `batch:${uid()}`;
    await a.join(room);
    await a.act(room, 'inc');
    const joined = await b.join(room);           // a change is pending in the interval
    assert.deepEqual(joined.state, { n: 1, log: [1] });
    await a.act(room, 'inc');
    await b.untilView(room, (s) => s.n === 2, 3000);
    assertCleanView(b, room);
    await a.untilView(room, (s) => s.n === 2, 3000);
    assert.deepEqual(a.view(room).state, b.view(room).state);
    assert.equal(a.view(room).seq, b.view(room).seq);
  });

  it('replays patches from a room with patchRate 0', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `instant:${uid()}`;
    await a.join(room);
    await b.join(room);
    for (let i = 1; i <= 5; i++) assert.equal(await a.act(room, 'inc'), i);
    const synced = await a.sync(room);
    assert.deepEqual(synced.state, { n: 5 });
    await b.untilView(room, synced.seq);
    assert.deepEqual(assertCleanView(b, room).state, { n: 5 });
  });
});
