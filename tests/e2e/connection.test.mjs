// The connection itself: welcome, subprotocol, ping, refs (docs/protocol.md "Transport",
// "Client to server").
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connect } from './helpers.mjs';

const T = { timeout: 20000 };

describe('connection', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('sends welcome as the first frame with session, client, server and heartbeat', T, async () => {
    const c = await server.connect();
    assert.equal(c.log[0], c.welcome);
    const w = c.welcome;
    assert.equal(w.op, 'welcome');
    assert.equal(typeof w.session, 'string');
    assert.ok(w.session.length > 0);
    assert.ok(typeof w.client === 'string' || typeof w.client === 'number', `client: ${w.$line}`);
    assert.equal(typeof w.server, 'string');
    assert.equal(w.heartbeat, 25000, 'default --heartbeat-ms is 25000');
    assert.equal(w.userId, undefined, 'an anonymous connection has no userId');
  });

  it('gives every connection its own client id and session', T, async () => {
    const [a, b, c] = await Promise.all([server.connect(), server.connect(), server.connect()]);
    const ids = new Set([a, b, c].map((x) => x.welcome.client));
    const sessions = new Set([a, b, c].map((x) => x.welcome.session));
    assert.equal(ids.size, 3);
    assert.equal(sessions.size, 3);
  });

  it('selects the atrium.v1 subprotocol when the client offers it', T, async () => {
    const c = await connect(server.url, { protocols: ['atrium.v1'] });
    assert.equal(c.ws.protocol, 'atrium.v1');
    assert.equal(await c.ok({ op: 'ping' }), 'pong');
  });

  it('speaks JSON to a client that offers no subprotocol', T, async () => {
    const c = await server.connect();
    assert.equal(c.ws.protocol, '');
    assert.equal(c.welcome.op, 'welcome');
    assert.equal(await c.ok({ op: 'ping' }), 'pong');
  });

  it('answers ping with a reply carrying result "pong" and the same numeric ref', T, async () => {
    const c = await server.connect();
    c.send({ op: 'ping', ref: 41 });
    const r = await c.next({ op: 'reply', ref: 41 });
    assert.deepEqual({ ...r }, { op: 'reply', ref: 41, ok: true, result: 'pong' });
  });

  it('echoes a string ref exactly, keeping its type', T, async () => {
    const c = await server.connect();
    c.send({ op: 'ping', ref: '41' });
    c.send({ op: 'ping', ref: 41 });
    const first = await c.next({ op: 'reply' });
    const second = await c.next({ op: 'reply' });
    assert.equal(first.ref, '41');
    assert.equal(second.ref, 41);
  });

  it('sends exactly one reply per ref and none to a request without a ref', T, async () => {
    const c = await server.connect();
    c.send({ op: 'ping' });
    c.send({ op: 'ping', ref: 'only' });
    await c.next({ op: 'reply', ref: 'only' });
    await c.nothing((m) => m.op === 'reply' && m.ref !== 'only', 300, 0);
    const replies = c.log.filter((m) => m.op === 'reply');
    assert.deepEqual(replies.map((m) => m.ref), ['only']);
  });

  it('sends server frames as JSON Lines that each parse on their own', T, async () => {
    const c = await server.connect();
    await Promise.all(Array.from({ length: 20 }, () => c.ok({ op: 'ping' })));
    assert.deepEqual(c.badLines, []);
    assert.ok(c.raw.every((r) => r.isBinary === false), 'atrium.v1 uses text frames only');
    assert.equal(c.log.filter((m) => m.op === 'reply').length, 20);
  });
});
