// The Pusher protocol as a guest on Atrium's port (net/guest_protocol.hpp): what the
// transport owes it whatever the protocol says. Its paths exist only when an app is
// configured; its upgrades pass the same Origin and per-address checks as /ws; every frame
// it sends is a WebSocket message of its own (never JSON Lines); its HTTP routes skip the
// admin token (they are signed); its connections obey the same size cap and are closed
// with 4200 (reconnect) on shutdown. The protocol itself: tests/pusher/ (real pusher-js).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import WebSocket from 'ws';
import { startServer, cleanup } from './helpers.mjs';

const T = { timeout: 20000 };
const APP = ['--pusher-app', 'app1:key1:secret1'];

// A raw Pusher connection: every message parsed, in order.
function open(server, path, opts = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`, opts);
  const messages = [];
  const waiters = [];
  ws.on('message', (data, binary) => {
    messages.push({ text: data.toString(), binary });
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const upgraded = new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('unexpected-response', (req, res) => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
  });
  async function next(count = 1, ms = 5000) {
    const deadline = Date.now() + ms;
    while (messages.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${messages.length} of ${count} messages: ${JSON.stringify(messages)}`);
      await new Promise((resolve) => { waiters.push(resolve); setTimeout(resolve, 50); });
    }
    return messages;
  }
  return { ws, messages, closed, upgraded, next };
}

function socketIdOf(message) {
  const m = JSON.parse(message.text);
  assert.equal(m.event, 'pusher:connection_established');
  return JSON.parse(m.data).socket_id;
}

describe('the Pusher protocol as a guest of the transport', () => {
  after(cleanup);

  it('/app/KEY is no endpoint without --pusher-app: 404, as any other path', T, async () => {
    const server = await startServer();
    const c = open(server, '/app/key1?protocol=7');
    await assert.rejects(c.upgraded, (e) => e.status === 404);
    const api = await server.http('GET', '/apps/app1/channels');
    assert.equal(api.status, 404);
  });

  it('upgrades to /app/KEY pass the Origin and per-address checks of /ws', T, async () => {
    const server = await startServer({ args: [...APP, '--allowed-origins', 'https://good.example',
      '--max-connections-per-ip', '2'] });
    const bad = open(server, '/app/key1?protocol=7', { origin: 'https://evil.example' });
    await assert.rejects(bad.upgraded, (e) => e.status === 403);
    const a = open(server, '/app/key1?protocol=7', { origin: 'https://good.example' });
    const b = open(server, '/app/key1?protocol=7', { origin: 'https://good.example' });
    await a.upgraded;
    await b.upgraded;
    const third = open(server, '/app/key1?protocol=7', { origin: 'https://good.example' });
    await assert.rejects(third.upgraded, (e) => e.status === 429);
    a.ws.close();
    b.ws.close();
  });

  it('every frame is a WebSocket message of its own, even when many leave in one write', T, async () => {
    const server = await startServer({ args: APP });
    const c = open(server, '/app/key1?protocol=7&client=js&version=8.4.0');
    await c.upgraded;
    await c.next(1);
    // 50 pings read in one turn of the loop: their pongs are queued together and leave in
    // one write, each framed as a message of its own.
    for (let i = 0; i < 50; i++) c.ws.send('{"event":"pusher:ping","data":{}}');
    const messages = await c.next(1 + 50);
    for (const m of messages.slice(1)) {
      assert.equal(m.binary, false);
      assert.ok(!m.text.includes('\n'), `one JSON object per message: ${m.text}`);
      JSON.parse(m.text);
    }
    assert.ok(messages.slice(1).filter((m) => JSON.parse(m.text).event === 'pusher:pong').length >= 50);
    c.ws.close();
  });

  it('permessage-deflate is declined on /app/KEY, agreed on /ws of the same server', T, async () => {
    const server = await startServer({ args: APP });
    const pusher = open(server, '/app/key1?protocol=7&client=js&version=8.4.0');  // ws offers it
    await pusher.upgraded;
    assert.equal(pusher.ws.extensions, '');
    await pusher.next(1);
    pusher.ws.send('{"event":"pusher:ping","data":{}}');
    assert.equal(JSON.parse((await pusher.next(2))[1].text).event, 'pusher:pong');
    const atrium = open(server, '/ws');
    await atrium.upgraded;
    assert.equal(atrium.ws.extensions, 'permessage-deflate');
    pusher.ws.close();
    atrium.ws.close();
  });

  it('the HTTP API under /apps/ needs no admin token (its requests are signed); /api/ still does', T, async () => {
    const server = await startServer({ args: [...APP, '--admin-token', 'sekret'] });
    const ts = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ name: 'e', channel: 'c', data: '{}' });
    const md5 = (await import('node:crypto')).createHash('md5').update(body).digest('hex');
    const query = `auth_key=key1&auth_timestamp=${ts}&auth_version=1.0&body_md5=${md5}`;
    const sig = createHmac('sha256', 'secret1').update(`POST\n/apps/app1/events\n${query}`).digest('hex');
    const ok = await server.http('POST', `/apps/app1/events?${query}&auth_signature=${sig}`, body,
      { 'content-type': 'application/json' });
    assert.equal(ok.status, 200, ok.text);
    const unsigned = await server.http('POST', '/apps/app1/events', body, { 'content-type': 'application/json' });
    assert.equal(unsigned.status, 401);
    const api = await server.http('POST', '/api/rooms/x/emit', { event: 'e' });
    assert.equal(api.status, 401);
  });

  it('a message over the size cap closes with 1009; the server stays up', T, async () => {
    const server = await startServer({ args: APP });
    const c = open(server, '/app/key1?protocol=7');
    await c.upgraded;
    await c.next(1);
    c.ws.send('x'.repeat(200 * 1024));
    assert.equal((await c.closed).code, 1009);
    const again = open(server, '/app/key1?protocol=7');
    await again.upgraded;
    assert.ok(socketIdOf((await again.next(1))[0]));
    again.ws.close();
  });

  it('shutdown closes Pusher connections with 4200, so pusher-js reconnects at once', T, async () => {
    const server = await startServer({ args: APP });
    const c = open(server, '/app/key1?protocol=7');
    await c.upgraded;
    await c.next(1);
    const stopping = server.stop();
    assert.equal((await c.closed).code, 4200);
    assert.equal(await stopping, 0);
  });

  it('/metrics carries the Pusher counters', T, async () => {
    const server = await startServer({ args: APP });
    const c = open(server, '/app/key1?protocol=7');
    await c.upgraded;
    await c.next(1);
    const m = await server.http('GET', '/metrics');
    assert.match(m.text, /^atrium_pusher_connections(\{[^}]*\})? 1$/m);
    c.ws.close();
  });
});
