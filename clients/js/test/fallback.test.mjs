// The HTTP fallback (docs/client.md "transports"): the same client API over an event stream
// and POSTs, forced, or chosen by itself when there is no WebSocket or a proxy refuses the
// upgrade (a proxy in this test answers 400 to every upgrade and passes plain HTTP on).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../src/index.js';
import { uid, until, WebSocket, useServer } from './helpers.mjs';
import { refusingProxy } from './refusing_proxy.mjs';

const T = { timeout: 20000 };

describe('atrium-client over the HTTP fallback', () => {
  const ctx = useServer();
  let proxy;
  before(async () => { proxy = await refusingProxy(ctx.server.origin); });
  after(async () => { await proxy?.close(); });

  it("transports: ['http'] joins, calls, follows patches and events; close() leaves at once", T, async () => {
    const watcher = ctx.track(await connect(ctx.server.url, { WebSocket }));
    const id = `board:${uid()}`;
    const seen = await watcher.join(id);
    const c = await connect(ctx.server.url, { WebSocket, transports: ['http'] });
    const room = await c.join(id);
    assert.equal(room.state.online, 2);
    assert.equal(await room.call('push', 'over http'), 1);
    await until(() => room.state.items.length === 1, 'the patch on the stream');
    const events = [];
    room.on('event', (e) => events.push(e));
    await room.emit('wave', { n: 1 });
    await until(() => events.length === 1, 'the event');
    assert.deepEqual(events[0].data, { from: c.id, data: { n: 1 } });
    await c.close();
    await until(() => seen.state.online === 1, 'onLeave at once, as for a clean WebSocket close', 3000);
  });

  it('falls back by itself when there is no WebSocket', T, async () => {
    const c = ctx.track(await connect(ctx.server.url, { WebSocket: undefined, transports: ['websocket', 'http'] }));
    assert.equal(c.status, 'open');
    const room = await c.join(`board:${uid()}`);
    assert.equal(await room.call('push', 1), 1);
  });

  it('falls back when a proxy refuses the upgrade, and resumes over it when the proxy cuts the stream', T, async () => {
    const c = ctx.track(await connect(proxy.origin, { WebSocket, minReconnectDelay: 50 }));
    assert.ok(proxy.srv.refused >= 1, 'the WebSocket was tried first');
    const id = `board:${uid()}`;
    const room = await c.join(id);
    await room.call('push', 'before');
    const resumed = new Promise((resolve) => room.once('resumed', resolve));
    const refusedBefore = proxy.srv.refused;
    proxy.cutStreams();
    const info = await resumed;
    assert.equal(info.recovered, true);
    assert.equal(proxy.srv.refused, refusedBefore, 'the reconnect stayed on HTTP');
    await room.call('push', 'after');
    await until(() => room.state.items.length === 2, 'the patch after the resume');
    assert.deepEqual(room.state.items, ['before', 'after']);
  });
});
