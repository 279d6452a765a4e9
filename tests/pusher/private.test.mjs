// Private channels: authorization signed by the `pusher` SDK behind a tiny HTTP endpoint
// (what a Laravel back end's /broadcasting/auth is), a wrong secret, client events and
// their rules, and malformed frames sent over a bare WebSocket.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startAtrium, makeApp, sdk, PusherSDK, connected, nextEvent, subscribed, record, uid,
  sleep, nothingWithin, authServer, localAuthorizer, RawClient, cleanup,
} from './helpers.mjs';

const app = makeApp('301');
let server;
let api;
let auth;

before(async () => {
  server = await startAtrium({ apps: [app] });
  api = sdk(server, app);
  auth = await authServer(api);
});
after(cleanup);

const viaEndpoint = () => ({ channelAuthorization: { endpoint: auth.endpoint, transport: 'ajax' } });

// A raw client's auth for a channel, signed with the app's secret.
const signed = (raw, channel, data) => api.authorizeChannel(raw.socketId, channel, data);

// The frame answering a subscribe: succeeded, subscription_error or pusher:error.
const answer = (channel) => (f) => f.event === 'pusher:error' ||
  (f.channel === channel && /subscription_(succeeded|error)$/.test(f.event));

describe('private channels', { concurrency: true }, () => {
  it('subscribes through the auth endpoint and gets SDK triggers', async () => {
    const p = await connected(server, app, viaEndpoint());
    const name = uid('private-orders-');
    const ch = await subscribed(p, name);
    assert.ok(auth.calls.some((c) => c.form.channel_name === name && c.form.socket_id === p.connection.socket_id),
      'pusher-js posted socket_id and channel_name to the endpoint');
    const got = nextEvent(ch, 'shipped');
    await api.trigger(name, 'shipped', { id: 7 });
    assert.deepEqual(await got, { id: 7 });
  });

  it('a signature made with the wrong secret: pusher:subscription_error with a status', async () => {
    const wrong = new PusherSDK({ appId: app.id, key: app.key, secret: 'not-the-secret' });
    const p = await connected(server, app, { channelAuthorization: localAuthorizer(wrong) });
    const name = uid('private-wrong-');
    const ch = p.subscribe(name);
    const err = await nextEvent(ch, 'pusher:subscription_error', 5000);
    assert.equal(typeof err.status, 'number', `status in ${JSON.stringify(err)}`);
    assert.equal(err.status, 401, JSON.stringify(err));
    assert.equal(ch.subscribed, false);
    // The connection is still fine: a good subscription after it.
    await subscribed(p, uid('after-wrong-'));
    // And the raw frame, as Pusher sends it.
    const raw = await RawClient.open(server, app.key);
    const bad = wrong.authorizeChannel(raw.socketId, name);
    const reply = await raw.request({ event: 'pusher:subscribe', data: { channel: name, auth: bad.auth } }, answer(name));
    assert.equal(reply.event, 'pusher:subscription_error', reply.raw);
    assert.equal(reply.channel, name);
    assert.equal(reply.data.status, 401, reply.raw);
    assert.equal(reply.data.type, 'AuthError', reply.raw);
  });

  it('auth signed for another socket is refused', async () => {
    const [a, b] = await Promise.all([RawClient.open(server, app.key), RawClient.open(server, app.key)]);
    const name = uid('private-steal-');
    const forA = signed(a, name);
    const reply = await b.request({ event: 'pusher:subscribe', data: { channel: name, auth: forA.auth } }, answer(name));
    assert.notEqual(reply.event, 'pusher_internal:subscription_succeeded', reply.raw);
  });

  it('auth with another app key is refused', async () => {
    const raw = await RawClient.open(server, app.key);
    const name = uid('private-key-');
    const other = new PusherSDK({ appId: '9', key: 'otherkey', secret: app.secret });
    const reply = await raw.request({ event: 'pusher:subscribe',
      data: { channel: name, auth: other.authorizeChannel(raw.socketId, name).auth } }, answer(name));
    assert.notEqual(reply.event, 'pusher_internal:subscription_succeeded', reply.raw);
  });

  it('client events reach the other subscribers, never the sender', async () => {
    const name = uid('private-chat-');
    const [p1, p2, p3] = await Promise.all([1, 2, 3].map(() => connected(server, app, viaEndpoint())));
    const [c1, c2, c3] = await Promise.all([p1, p2, p3].map((p) => subscribed(p, name)));
    const seen1 = record(c1);
    const g2 = nextEvent(c2, 'client-typing');
    const g3 = nextEvent(c3, 'client-typing');
    assert.equal(c1.trigger('client-typing', { who: 'p1' }), true);
    assert.deepEqual(await g2, { who: 'p1' });
    assert.deepEqual(await g3, { who: 'p1' });
    await nothingWithin(seen1, 400, 0, (e) => e.event === 'client-typing');
  });

  it('client events on a public channel are not delivered', async () => {
    const name = uid('public-chat-');
    const [a, b] = await Promise.all([RawClient.open(server, app.key), RawClient.open(server, app.key)]);
    await a.subscribe(name);
    await b.subscribe(name);
    const mark = b.mark();
    const err = a.request({ event: 'client-hi', channel: name, data: { x: 1 } }, 'pusher:error');
    await nothingWithin(b.frames, 500, mark, (f) => f.event === 'client-hi');
    assert.match((await err).data.message, /private and presence/, (await err).raw);
    await a.ping();
  });

  it('client events to a channel the sender is not subscribed to are not delivered', async () => {
    const name = uid('private-notin-');
    const [a, b] = await Promise.all([RawClient.open(server, app.key), RawClient.open(server, app.key)]);
    await b.subscribe(name, signed(b, name));
    const mark = b.mark();
    const err = a.request({ event: 'client-sneak', channel: name, data: {} }, 'pusher:error');
    await nothingWithin(b.frames, 500, mark, (f) => f.event === 'client-sneak');
    assert.equal((await err).data.code, null, (await err).raw);
    await a.ping();
  });

  it('client events over the rate limit: pusher:error 4301', async () => {
    const name = uid('private-flood-');
    const [a, b] = await Promise.all([RawClient.open(server, app.key), RawClient.open(server, app.key)]);
    await a.subscribe(name, signed(a, name));
    await b.subscribe(name, signed(b, name));
    const mark = a.mark();
    for (let i = 0; i < 30; i += 1) a.send({ event: 'client-burst', channel: name, data: { i } });
    const err = await a.next((f) => f.event === 'pusher:error', 4000, mark);
    assert.equal(err.data.code, 4301, err.raw);
    await sleep(300);
    const got = b.frames.filter((f) => f.event === 'client-burst').length;
    assert.ok(got >= 1 && got < 30, `${got} of 30 burst events delivered`);
  });

  it('a client event over 100 KB is not delivered', async () => {
    const name = uid('private-big-');
    const [a, b] = await Promise.all([RawClient.open(server, app.key), RawClient.open(server, app.key)]);
    await a.subscribe(name, signed(a, name));
    await b.subscribe(name, signed(b, name));
    const mark = b.mark();
    a.send({ event: 'client-big', channel: name, data: { blob: 'x'.repeat(110 * 1024) } });
    a.send({ event: 'client-small', channel: name, data: { ok: 1 } });
    await b.next((f) => f.event === 'client-small', 3000, mark);
    assert.equal(b.frames.slice(mark).filter((f) => f.event === 'client-big').length, 0);
  });

  it('a client event name over 200 characters is not delivered', async () => {
    const name = uid('private-longname-');
    const [a, b] = await Promise.all([RawClient.open(server, app.key), RawClient.open(server, app.key)]);
    await a.subscribe(name, signed(a, name));
    await b.subscribe(name, signed(b, name));
    const mark = b.mark();
    const long = `client-${'n'.repeat(200)}`;
    a.send({ event: long, channel: name, data: {} });
    a.send({ event: 'client-short', channel: name, data: {} });
    await b.next((f) => f.event === 'client-short', 3000, mark);
    assert.equal(b.frames.slice(mark).filter((f) => f.event === long).length, 0);
  });
});

describe('malformed frames over a bare WebSocket', { concurrency: true }, () => {
  const cases = [
    ['auth missing', (ch) => ({ event: 'pusher:subscribe', data: { channel: ch } })],
    ['auth null', (ch) => ({ event: 'pusher:subscribe', data: { channel: ch, auth: null } })],
    ['auth a number', (ch) => ({ event: 'pusher:subscribe', data: { channel: ch, auth: 12345 } })],
    ['auth an object', (ch) => ({ event: 'pusher:subscribe', data: { channel: ch, auth: { a: 1 } } })],
    ['auth without a colon', (ch) => ({ event: 'pusher:subscribe', data: { channel: ch, auth: 'nocolon' } })],
    ['channel_data not JSON (presence)', (ch) => ({ event: 'pusher:subscribe', data: { channel: `presence-${ch}`, auth: 'k:s', channel_data: '{nope' } })],
    ['data a string', () => ({ event: 'pusher:subscribe', data: 'private-x' })],
    ['data a number', () => ({ event: 'pusher:subscribe', data: 42 })],
    ['data missing', () => ({ event: 'pusher:subscribe' })],
    ['channel a number', () => ({ event: 'pusher:subscribe', data: { channel: 7 } })],
    ['a 201-character channel name', () => ({ event: 'pusher:subscribe', data: { channel: 'c'.repeat(201) } })],
    ['a channel name with a space', () => ({ event: 'pusher:subscribe', data: { channel: 'no spaces' } })],
    ['a 60 KB channel name', () => ({ event: 'pusher:subscribe', data: { channel: `private-${'c'.repeat(60 * 1024)}`, auth: 'k:s' } })],
    ['a 118784-byte message (event-bytes + 16 KB, the largest one read)', () => {
      const base = JSON.stringify({ event: 'pusher:subscribe', data: { channel: '' } });
      return JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'c'.repeat(102400 + 16384 - base.length) } });
    }],
  ];
  for (const [what, frame] of cases) {
    it(`${what}: an error frame, and the connection stays usable`, async () => {
      const raw = await RawClient.open(server, app.key);
      const ch = uid('private-bad-');
      const mark = raw.mark();
      raw.send(frame(ch));
      const reply = await raw.next((f) => f.event === 'pusher:error' || /subscription_(error|succeeded)$/.test(f.event), 3000, mark);
      assert.notEqual(reply.event, 'pusher_internal:subscription_succeeded', reply.raw.slice(0, 300));
      assert.equal(raw.closeInfo, null, 'still open');
      await raw.ping();
      const ok = uid('private-ok-');
      await raw.subscribe(ok, signed(raw, ok));
    });
  }

  // Past the largest message the endpoint reads (the largest event-bytes + 16 KB, or
  // --max-message-bytes if more), nothing of it is parsed: pusher:error says why, and the
  // connection closes with 1009 (pusher-js reconnects). The server reads no further.
  it('a 1 MB channel name: an error frame, then close 1009, and the server serves on', async () => {
    const raw = await RawClient.open(server, app.key);
    const mark = raw.mark();
    raw.send({ event: 'pusher:subscribe', data: { channel: `private-${'c'.repeat(1 << 20)}`, auth: 'k:s' } });
    const reply = await raw.next((f) => f.event === 'pusher:error', 3000, mark);
    assert.match(reply.data.message, /over the limit of 118784 bytes/, reply.raw);
    assert.equal((await raw.closedWithin(4000)).code, 1009);
    const again = await RawClient.open(server, app.key);
    await again.ping();
  });

  it('text that is not JSON, an unknown pusher: event, a binary frame: the connection survives', async () => {
    const raw = await RawClient.open(server, app.key);
    const notJson = await raw.request('this is not json', 'pusher:error');
    assert.equal(notJson.data.code, null, notJson.raw);
    const unknown = await raw.request({ event: 'pusher:unheard_of', data: {} }, 'pusher:error');
    assert.match(unknown.data.message, /pusher:unheard_of/, unknown.raw);
    raw.send('{"event": 5}');
    raw.send({ event: 'pusher:unheard_of', data: {} });
    raw.send(JSON.stringify([1, 2, 3]));
    raw.ws.send(Buffer.from([0, 1, 2, 255]), { binary: true });
    await sleep(200);
    if (raw.closeInfo === null) {
      await raw.ping();
    }
    // Whatever it did with that connection, the server serves new ones.
    const fresh = await RawClient.open(server, app.key);
    await fresh.ping();
    assert.equal(server.alive(), true);
  });

  it('the server is alive after all of it', async () => {
    await sleep(500);
    assert.equal(server.alive(), true, server.output().slice(-2000));
    const res = await api.get({ path: '/channels' });
    assert.equal(res.status, 200);
  });
});
