// client.watch(): follow a room's state without being a member (the inspector's op, see
// docs/protocol.md "Watching a room"), with and without an admin token on the server.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../src/index.js';
import { uid, until, nextEvent, tappedWebSocket, WebSocket, useServer } from './helpers.mjs';

const T = { timeout: 15000 };

describe('watch (no admin token)', () => {
  const ctx = useServer({ client: { minReconnectDelay: 20, maxReconnectDelay: 200 } });
  const { open } = ctx;

  it('follows patches without joining: no hook runs, the member count stays', T, async () => {
    const [member, inspector] = [await open(), await open()];
    const id = `board:${uid()}`;
    const room = await member.join(id);
    const w = await inspector.watch(id);
    assert.equal(w.id, id);
    assert.deepEqual(w.state, room.state);
    assert.equal(inspector.room(id), undefined, 'not a member');
    const changed = nextEvent(w, 'state');
    await room.call('push', 'seen');
    const [state, ops] = await changed;
    assert.deepEqual(state.items, ['seen']);
    assert.ok(ops.length > 0);
    assert.equal(state.online, 1, 'the watcher is not counted');
    assert.equal((await ctx.server.http('GET', `/api/rooms/${id}`)).json.members, 1);
    await until(() => room.seq === w.seq, 'same seq');
    assert.deepEqual(w.state, room.state);
  });

  it('gets the room\'s events and its script faults, with the error as an AtriumError', T, async () => {
    const [member, inspector] = [await open(), await open()];
    const id = `board:${uid()}`;
    const room = await member.join(id);
    const w = await inspector.watch(id);
    const ev = nextEvent(w, 'event');
    room.emit('wave', { hand: 'left' });
    const [got] = await ev;
    assert.equal(got.event, 'wave');
    assert.deepEqual(got.data.data, { hand: 'left' });
    const fault = nextEvent(w, 'fault');
    await assert.rejects(room.call('fail'), { code: 'script_error' });
    const [f] = await fault;
    assert.equal(f.in, "action 'fail'");
    assert.equal(f.error.message, 'failed on purpose');
    assert.equal(f.error.code, 'script_error');
    assert.match(f.error.where, /^rooms\/board\.lua:\d+$/);
    assert.match(f.traceback, /stack traceback/);
  });

  it('rejects a room that does not exist with not_found', T, async () => {
    const c = await open();
    await assert.rejects(c.watch(`board:${uid()}`), { code: 'not_found' });
  });

  it('unwatch stops the patches; a closed room ends the watch with left(closed)', T, async () => {
    const [member, inspector] = [await open(), await open()];
    const id = `board:${uid()}`;
    const room = await member.join(id);
    const tap = tappedWebSocket();
    const spy = await open({ WebSocket: tap.WebSocket });
    const w = await spy.watch(id);
    await w.unwatch();
    assert.equal(w.active, false);
    await room.call('push', 'unseen');
    await until(() => room.state.items.length === 1, 'the member sees it');
    await new Promise((r) => setTimeout(r, 150));
    assert.ok(!tap.last().received.some((l) => l.includes('unseen')), 'no patch after unwatch');

    const w2 = await inspector.watch(id);
    const left = nextEvent(w2, 'left');
    await room.call('close');
    assert.equal((await left)[0], 'closed');
    assert.equal(w2.active, false);
    assert.equal(inspector.watches.size, 0);
  });

  it('a watch survives a reconnect', T, async () => {
    const member = await open();
    const id = `board:${uid()}`;
    const room = await member.join(id);
    const tap = tappedWebSocket();
    const inspector = await open({ WebSocket: tap.WebSocket });
    const w = await inspector.watch(id);
    tap.last().cut();
    await until(() => inspector.status === 'reconnecting', 'reconnecting');
    await until(() => inspector.status === 'open', 'open');
    assert.ok(tap.last().sent.some((m) => m.op === 'watch' && m.room === id), 'watched again');
    await room.call('push', 'later');
    await until(() => w.state.items.includes('later'), 'patches on the new connection');
  });
});

describe('watch with an admin token', () => {
  const ctx = useServer({ server: { args: ['--admin-token', 's3cret'] } });

  it('needs the token: unauthorized without it or with a wrong one', T, async () => {
    const [member, inspector] = await Promise.all([connect(ctx.server.url, { WebSocket }), connect(ctx.server.url, { WebSocket })]);
    ctx.track(member); ctx.track(inspector);
    const id = `board:${uid()}`;
    await member.join(id);
    await assert.rejects(inspector.watch(id), { code: 'unauthorized' });
    await assert.rejects(inspector.watch(id, { token: 'guess' }), { code: 'unauthorized' });
    const w = await inspector.watch(id, { token: 's3cret' });
    assert.equal(w.state.online, 1);
  });
});
