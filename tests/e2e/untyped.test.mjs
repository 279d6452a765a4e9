// Untyped rooms: ids whose TYPE has no script are plain pub/sub with empty state
// (docs/protocol.md "Ids", "Client to server").
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, uid } from './helpers.mjs';

const T = { timeout: 20000 };

describe('untyped rooms', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('joins a room whose type has no script and returns {room, seq, state: {}}', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `pubsub-${uid()}`;
    const result = await a.join(room);
    assert.equal(result.room, room);
    assert.equal(typeof result.seq, 'number');
    assert.deepEqual(result.state, {});
  });

  it('joins an id without a colon as an untyped room', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `lobby${uid()}`;
    const result = await a.join(room);
    assert.equal(result.room, room);
    assert.deepEqual(result.state, {});
  });

  it('delivers an emit to the other members with from set, and not to the sender', T, async () => {
    const [a, b, c] = await connectMany(server, 3);
    const room = `pubsub-${uid()}`;
    for (const x of [a, b, c]) await x.join(room);

    const mark = a.log.length;
    assert.equal((await a.request({ op: 'emit', room, event: 'hello', data: { n: 1, s: 'ü' } })).ok, true);
    for (const other of [b, c]) {
      const e = await other.next({ op: 'event', room, event: 'hello' });
      assert.deepEqual(e.data, { n: 1, s: 'ü' });
      assert.equal(e.from, a.welcome.client);
    }
    await a.nothing({ op: 'event' }, 200, 0);
    assert.equal(a.log.slice(mark).filter((m) => m.op === 'event').length, 0);
  });

  it('does not deliver events of a room to clients that are not in it', T, async () => {
    const [a, b, outsider] = await connectMany(server, 3);
    const room = `pubsub-${uid()}`;
    await a.join(room);
    await b.join(room);
    await outsider.join(`pubsub-${uid()}`);
    await a.ok({ op: 'emit', room, event: 'private-ish', data: 1 });
    await b.next({ op: 'event', event: 'private-ish' });
    await outsider.nothing({ op: 'event' }, 200, 0);
  });

  it('keeps an untyped room state {} however many events pass through it', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `pubsub-${uid()}`;
    await a.join(room);
    await b.join(room);
    for (let i = 0; i < 5; i++) await a.ok({ op: 'emit', room, event: 'tick', data: { i } });
    const synced = await b.sync(room);
    assert.equal(synced.room, room);
    assert.deepEqual(synced.state, {});
    await b.nothing({ op: 'patch' }, 100, 0);
  });

  it('stops delivering to a member once it left, and the leaver can no longer emit', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `pubsub-${uid()}`;
    await a.join(room);
    await b.join(room);
    await b.leave(room);
    await a.ok({ op: 'emit', room, event: 'after-leave', data: null });
    await b.nothing({ op: 'event' }, 250, 0);
    await b.fails({ op: 'emit', room, event: 'x' }, 'not_member');
  });

  it('lets a client that left join the same room again', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `pubsub-${uid()}`;
    await a.join(room);
    await b.join(room);
    await b.leave(room);
    await b.join(room);
    await a.ok({ op: 'emit', room, event: 'welcome-back' });
    const e = await b.next({ op: 'event', event: 'welcome-back' });
    assert.equal(e.from, a.welcome.client);
  });

  it('answers a second join of the same room with already_member', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `pubsub-${uid()}`;
    await a.join(room);
    await a.fails({ op: 'join', room }, 'already_member');
  });

  it('answers emit, leave and call from a non-member with not_member', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `pubsub-${uid()}`;
    await a.join(room);
    await b.fails({ op: 'emit', room, event: 'x', data: 1 }, 'not_member');
    await b.fails({ op: 'leave', room }, 'not_member');
    await b.fails({ op: 'call', room, method: 'anything', args: [] }, 'not_member');
    await a.nothing({ op: 'event' }, 150, 0);
  });
});
