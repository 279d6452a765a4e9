// The HTTP API on the WebSocket port (docs/protocol.md "Notes for this server", HTTP):
// routes, statuses, bodies, percent-decoded ids, and the admin token on write routes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import {
  startServer, cleanup, connectMany, uid, assertPrometheusText, testRooms, lineOf, assertScriptMessage, assertScriptError,
} from './helpers.mjs';

const T = { timeout: 20000 };

function assertError(res, status, code) {
  assert.equal(res.status, status, `${res.status} ${res.text}`);
  assert.equal(res.json?.error?.code, code, res.text);
  assert.equal(typeof res.json.error.message, 'string');
}

describe('HTTP API', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('answers GET /healthz with 200 {"ok":true}', T, async () => {
    const res = await server.http('GET', '/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { ok: true });
    assert.match(res.headers['content-type'] ?? '', /json/);
  });

  it('answers GET /metrics with Prometheus text', T, async () => {
    const res = await server.http('GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] ?? '', /^text\/plain/);
    assertPrometheusText(res.text);
  });

  it('answers GET /api/status with version, uptime, connections and every type, the broken one with its error', T, async () => {
    const clients = await connectMany(server, 2);
    const res = await server.http('GET', '/api/status');
    assert.equal(res.status, 200);
    const s = res.json;
    assert.equal(typeof s.version, 'string');
    assert.equal(typeof s.uptime, 'number');
    assert.ok(s.uptime >= 0);
    assert.equal(typeof s.connections, 'number');
    assert.ok(s.connections >= clients.length, `connections ${s.connections}`);
    const names = fs.readdirSync(testRooms).filter((f) => f.endsWith('.lua')).map((f) => f.slice(0, -4));
    const types = new Map(s.types.map((t) => [t.name, t]));
    for (const name of names) {
      const t = types.get(name);
      assert.ok(t, `type ${name} is listed`);
      assert.match(t.file, new RegExp(`${name}\\.lua$`));
      assert.ok('version' in t && 'loadedAt' in t, JSON.stringify(t));
      if (name !== 'broken') assert.ok(!t.error, `${name} loaded: ${t.error}`);
    }
    const broken = path.join(testRooms, 'broken.lua');
    assertScriptMessage(types.get('broken').error, broken, lineOf(broken, 'broken:syntax'));
  });

  it('counts connections in /api/status as they come and go', T, async () => {
    const before = (await server.http('GET', '/api/status')).json.connections;
    const clients = await connectMany(server, 3);
    assert.equal((await server.http('GET', '/api/status')).json.connections, before + 3);
    await Promise.all(clients.map((c) => c.close()));
    let now;
    for (let i = 0; i < 20; i++) {
      now = (await server.http('GET', '/api/status')).json.connections;
      if (now === before) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(now, before);
  });

  it('lists live rooms in GET /api/rooms with id, type, members and seq', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `secret:${uid()}`;
    const joined = await a.join(room);
    await b.join(room);
    const res = await server.http('GET', '/api/rooms');
    assert.equal(res.status, 200);
    const entry = res.json.rooms.find((r) => r.id === room);
    assert.ok(entry, 'the room is listed');
    assert.equal(entry.type, 'secret');
    assert.equal(entry.members, 2);
    assert.equal(typeof entry.seq, 'number');
    assert.ok(entry.seq >= joined.seq);
  });

  it('answers GET /api/rooms/:id with id, type, members, seq and the public state only', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `secret:${uid()}`;
    await a.join(room, { password: 'pw' });
    const synced = await a.sync(room);
    const res = await server.http('GET', `/api/rooms/${room}`);
    assert.equal(res.status, 200);
    const { id, type, members, seq, state } = res.json;
    assert.deepEqual({ id, type, members, seq, state },
      { id: room, type: 'secret', members: 1, seq: synced.seq, state: synced.state });
  });

  it('answers GET /api/rooms/:id of an untyped room with its members and state {}', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `pubsub-${uid()}`;
    await a.join(room);
    await b.join(room);
    const res = await server.http('GET', `/api/rooms/${room}`);
    assert.equal(res.status, 200);
    assert.equal(res.json.id, room);
    assert.equal(res.json.members, 2);
    assert.deepEqual(res.json.state, {});
  });

  it('answers 404 not_found for a room that does not exist, without creating it', T, async () => {
    const room = `secret:${uid()}`;
    assertError(await server.http('GET', `/api/rooms/${room}`), 404, 'not_found');
    assertError(await server.http('GET', `/api/rooms/${room}`), 404, 'not_found');
    const list = await server.http('GET', '/api/rooms');
    assert.ok(!list.json.rooms.some((r) => r.id === room));
  });

  it('percent-decodes room ids in paths', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `secret:x@y.z-${uid()}`;
    await a.join(room);
    const plain = await server.http('GET', `/api/rooms/${room}`);
    const encoded = await server.http('GET', `/api/rooms/${encodeURIComponent(room)}`);
    const allEncoded = await server.http('GET',
      `/api/rooms/${[...Buffer.from(room)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')}`);
    assert.equal(plain.status, 200);
    assert.equal(encoded.status, 200, encoded.text);
    assert.equal(allEncoded.status, 200, allEncoded.text);
    assert.deepEqual(encoded.json, plain.json);
    assert.deepEqual(allEncoded.json, plain.json);
    assert.equal(encoded.json.id, room);
  });

  it('emits over POST /api/rooms/:id/emit to every member without from, bypassing onEvent', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `board:${uid()}`;
    await a.join(room);
    await b.join(room);
    const res = await server.http('POST', `/api/rooms/${encodeURIComponent(room)}/emit`,
      { event: 'news', data: { headline: 'héllo' } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { delivered: 2 });
    for (const x of [a, b]) {
      const e = await x.next({ op: 'event', event: 'news' });
      assert.equal(e.room, room);
      assert.deepEqual(e.data, { headline: 'héllo' });
      assert.equal('from' in e, false, 'an HTTP emit has no sender');
    }
    assert.equal((await a.sync(room)).state.clientEvents, 0, 'onEvent did not run');
    await a.ok({ op: 'emit', room, event: 'from-client', data: 1 });
    assert.equal((await a.sync(room)).state.clientEvents, 1, 'a client emit does run onEvent');
  });

  it('emits over HTTP into an untyped room', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `pubsub-${uid()}`;
    await a.join(room);
    const res = await server.http('POST', `/api/rooms/${room}/emit`, { event: 'ping', data: [1, 2] });
    assert.deepEqual(res.json, { delivered: 1 });
    const e = await a.next({ op: 'event', event: 'ping' });
    assert.deepEqual(e.data, [1, 2]);
    assert.equal('from' in e, false);
  });

  it('answers POST emit to a room that does not exist with 404 not_found', T, async () => {
    assertError(await server.http('POST', `/api/rooms/board:${uid()}/emit`, { event: 'x', data: 1 }), 404, 'not_found');
  });

  it('calls a plain method over POST /api/rooms/:id/call/:method and returns {result}', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `board:${uid()}`;
    await a.join(room);
    const res = await server.http('POST', `/api/rooms/${room}/call/announce`, { args: ['hello', { x: 1 }] });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { result: { length: 5, extra: { x: 1 } } });
    await a.untilView(room, (s) => s.banner === 'hello');
    assert.equal(await a.act(room, 'banner'), 'hello');
  });

  it('answers an HTTP call of an action, an unknown name or a script error with the right status', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `board:${uid()}`;
    await a.join(room);
    assertError(await server.http('POST', `/api/rooms/${room}/call/nope`, { args: [] }), 404, 'unknown_method');
    assertError(await server.http('POST', `/api/rooms/${room}/call/banner`, { args: [] }), 404, 'unknown_method');
    const res = await server.http('POST', `/api/rooms/${room}/call/explode`, { args: [] });
    assertError(res, 422, 'script_error');
    const file = path.join(testRooms, 'board.lua');
    assertScriptError(res.json.error, file, lineOf(file, 'board:explode'));
  });

  it('places a connected client with POST /api/rooms/:id/join: it gets joined with the state', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `vip:${uid()}`;
    const res = await server.http('POST', `/api/rooms/${room}/join`,
      { client: a.welcome.client, payload: { ticket: 'gold' } });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { ok: true });
    const joined = await a.next({ op: 'joined', room });
    assert.equal(typeof joined.seq, 'number');
    assert.deepEqual(joined.state, { guests: [a.welcome.client] });
    assert.equal(await a.act(room, 'whoami'), a.welcome.client);
    assertError(await server.http('POST', `/api/rooms/${room}/join`, { client: a.welcome.client, payload: { ticket: 'gold' } }),
      409, 'already_member');
  });

  it('answers an HTTP placement that onJoin rejects with 409 join_rejected and the reason', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `vip:${uid()}`;
    const res = await server.http('POST', `/api/rooms/${room}/join`, { client: a.welcome.client, payload: {} });
    assertError(res, 409, 'join_rejected');
    assert.equal(res.json.error.message, 'no ticket');
    await a.nothing({ op: 'joined' }, 200, 0);
  });

  it('answers an HTTP placement into a full room with 409 room_full', T, async () => {
    const [a, b, c] = await connectMany(server, 3);
    const room = `pair:${uid()}`;
    await a.join(room);
    await b.join(room);
    assertError(await server.http('POST', `/api/rooms/${room}/join`, { client: c.welcome.client, payload: {} }),
      409, 'room_full');
  });

  it('answers an HTTP placement of a client that is not connected with 404 not_found', T, async () => {
    const room = `vip:${uid()}`;
    assertError(await server.http('POST', `/api/rooms/${room}/join`, { client: 'c999999999', payload: { ticket: 'gold' } }),
      404, 'not_found');
  });

  it('answers a POST body that is not JSON with 400 bad_json, and a body missing fields with 400 bad_request', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `board:${uid()}`;
    await a.join(room);
    assertError(await server.http('POST', `/api/rooms/${room}/emit`, '{"event":'), 400, 'bad_json');
    assertError(await server.http('POST', `/api/rooms/${room}/emit`, { data: 1 }), 400, 'bad_request');
    assertError(await server.http('POST', `/api/rooms/${room}/emit`, { event: 5 }), 400, 'bad_request');
    assertError(await server.http('POST', `/api/rooms/${room}/call/announce`, { args: 'x' }), 400, 'bad_request');
    assertError(await server.http('POST', `/api/rooms/${room}/join`, { payload: {} }), 400, 'bad_request');
  });

  it('answers a route whose room id breaks the id rules with 400 bad_request', T, async () => {
    for (const id of [':bad', 'x:', 'a b', 'x'.repeat(129)]) {
      const p = `/api/rooms/${encodeURIComponent(id)}`;
      assertError(await server.http('POST', `${p}/emit`, { event: 'x' }), 400, 'bad_request');
      assertError(await server.http('GET', p), 400, 'bad_request');
    }
  });

  it('answers a POST body over the limit with 413 too_large', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `board:${uid()}`;
    await a.join(room);
    const body = JSON.stringify({ event: 'big', data: 'b'.repeat(2 * 1024 * 1024) });
    const res = await server.http('POST', `/api/rooms/${room}/emit`, body);
    assertError(res, 413, 'too_large');
    await a.nothing({ op: 'event', event: 'big' }, 200, 0);
  });

  it('reloads every script with POST /api/reload and reports each type', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `secret:${uid()}`;
    await a.join(room, { password: 'kept' });
    const before = await a.sync(room);
    const res = await server.http('POST', '/api/reload');
    assert.equal(res.status, 200, res.text);
    const types = new Map(res.json.types.map((t) => [t.name, t]));
    assert.equal(types.get('secret').ok, true);
    assert.equal(types.get('broken').ok, false);
    assert.match(types.get('broken').error, /broken\.lua:\d+:/);
    const after = await a.sync(room);
    assert.deepEqual(after.state, before.state, 'a reload keeps live state');
    assert.equal(await a.act(room, 'isLocked'), true, 'and meta');
  });
});

describe('HTTP API with an admin token', () => {
  let server;
  const token = `tok-${uid()}`;
  before(async () => { server = await startServer({ args: ['--admin-token', token] }); });
  after(cleanup);

  it('answers write routes without the token with 401 unauthorized', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `board:${uid()}`;
    await a.join(room);
    for (const [p, body] of [
      [`/api/rooms/${room}/emit`, { event: 'x', data: 1 }],
      [`/api/rooms/${room}/call/announce`, { args: ['x'] }],
      [`/api/rooms/${room}/join`, { client: a.welcome.client }],
      ['/api/reload', undefined],
    ]) {
      assertError(await server.http('POST', p, body), 401, 'unauthorized');
      assertError(await server.http('POST', p, body, { authorization: 'Bearer wrong' }), 401, 'unauthorized');
      assertError(await server.http('POST', p, body, { authorization: token }), 401, 'unauthorized');
    }
    await a.nothing({ op: 'event' }, 150, 0);
    assert.equal((await a.sync(room)).state.banner, '', 'the unauthorized call did not run');
  });

  it('accepts write routes with Authorization: Bearer TOKEN', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `board:${uid()}`;
    await a.join(room);
    const auth = { authorization: `Bearer ${token}` };
    const res = await server.http('POST', `/api/rooms/${room}/emit`, { event: 'x', data: 1 }, auth);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { delivered: 1 });
    await a.next({ op: 'event', event: 'x' });
    assert.equal((await server.http('POST', '/api/reload', undefined, auth)).status, 200);
  });

  it('keeps read routes open without the token', T, async () => {
    for (const p of ['/healthz', '/api/status', '/api/rooms', '/metrics']) {
      assert.equal((await server.http('GET', p)).status, 200, p);
    }
  });
});
