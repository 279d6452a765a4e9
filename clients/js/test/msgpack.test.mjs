// encoding: 'msgpack' (docs/client.md): the same client API over the subprotocol
// atrium.v1.msgpack, every message binary, through a reconnect and its resume.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as msgpack from '@msgpack/msgpack';
import { connect, MSGPACK_PROTOCOL } from '../src/index.js';
import { uid, until, WebSocket, useServer } from './helpers.mjs';

const T = { timeout: 20000 };

// `ws`, remembering each socket and whether each message it got was binary.
class Recording extends WebSocket {
  static sockets = [];
  constructor(url, protocols) {
    super(url, protocols);
    this.kinds = [];
    this.on('message', (data, isBinary) => this.kinds.push(isBinary));
    Recording.sockets.push(this);
  }
}

describe('atrium-client with encoding msgpack', () => {
  const ctx = useServer();

  it('joins, calls, follows patches and events; every message is binary', T, async () => {
    const c = ctx.track(await connect(ctx.server.url, { WebSocket: Recording, encoding: 'msgpack' }));
    const ws = Recording.sockets.at(-1);
    assert.equal(ws.protocol, MSGPACK_PROTOCOL);
    const id = `board:${uid()}`;
    const room = await c.join(id);
    assert.deepEqual(room.state, { items: [], tags: {}, online: 1, title: id.split(':')[1] });
    assert.equal(await room.call('push', { n: 1.5, s: 'é', big: 2 ** 40 }), 1);
    assert.equal(await room.call('push', [true, null]), 2);
    await until(() => room.state.items.length === 2, 'the patches');
    assert.deepEqual(room.state.items, [{ n: 1.5, s: 'é', big: 2 ** 40 }, [true, null]]);
    const events = [];
    room.on('event', (e) => events.push(e));
    await room.emit('wave', { hand: 'left' });
    await until(() => events.length === 1, 'the event');
    assert.deepEqual(events[0].data, { from: c.id, data: { hand: 'left' } });
    assert.deepEqual(await room.sync(), room.state);
    assert.ok(ws.kinds.length > 3 && ws.kinds.every((binary) => binary), `kinds ${ws.kinds}`);
  });

  it('a JSON client and a MessagePack client of one room see the same state', T, async () => {
    const id = `board:${uid()}`;
    const json = ctx.track(await connect(ctx.server.url, { WebSocket }));
    const mp = ctx.track(await connect(ctx.server.url, { WebSocket, encoding: 'msgpack', msgpack }));
    const a = await json.join(id);
    const b = await mp.join(id);
    for (let i = 0; i < 20; ++i) await (i % 2 ? a : b).call('push', { i, f: i / 3 });
    await until(() => a.state.items.length === 20 && b.state.items.length === 20, 'both to see 20 items');
    assert.deepEqual(b.state, a.state);
  });

  it('reconnects after a drop and resumes its seat over MessagePack', T, async () => {
    const c = ctx.track(await connect(ctx.server.url, { WebSocket: Recording, encoding: 'msgpack', minReconnectDelay: 50 }));
    const id = `board:${uid()}`;
    const room = await c.join(id);
    await room.call('push', 'before');
    const resumed = new Promise((resolve) => room.once('resumed', resolve));
    Recording.sockets.at(-1).terminate();                 // no close handshake: a drop
    await resumed;
    await until(() => c.status === 'open', 'the client to be open again');
    assert.equal(Recording.sockets.at(-1).protocol, MSGPACK_PROTOCOL);
    await room.call('push', 'after');
    await until(() => room.state.items.length === 2, 'the patch after the resume');
    assert.deepEqual(room.state.items, ['before', 'after']);
  });

  it('a msgpack option without encode and decodeMulti fails the connect, saying so', T, async () => {
    await assert.rejects(connect(ctx.server.url, { WebSocket, encoding: 'msgpack', msgpack: {} }),
      (err) => err.code === 'connect_failed' && /decodeMulti/.test(err.message));
  });
});
