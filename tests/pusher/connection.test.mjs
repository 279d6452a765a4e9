// Connecting with pusher-js (Node build) and public channels fed by the `pusher` server SDK.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startAtrium, makeApp, sdk, client, connected, until, nextEvent, subscribed, record, uid,
  sleep, nothingWithin, RawClient, cleanup,
} from './helpers.mjs';

const app = makeApp('101');
let server;
let api;

before(async () => {
  server = await startAtrium({ apps: [app], args: ['--pusher-limit', `${app.id}:subscription-count=1`] });
  api = sdk(server, app);
});
after(cleanup);

describe('connection', { concurrency: true }, () => {
  it('pusher-js connects and gets a socket_id', async () => {
    const p = client(server, app);
    await until(() => p.connection.state === 'connected', 5000, 'state connected');
    assert.match(p.connection.socket_id, /^\d+\.\d+$/);
    const q = await connected(server, app);
    assert.notEqual(q.connection.socket_id, p.connection.socket_id, 'socket ids are unique');
  });

  it('connection_established announces socket_id and activity_timeout; ping answers pong', async () => {
    const raw = await RawClient.open(server, app.key);
    const est = raw.frames[0];
    assert.equal(est.event, 'pusher:connection_established', est.raw);
    assert.equal(typeof JSON.parse(est.raw).data, 'string', 'data is JSON text, as Pusher sends it');
    assert.match(est.data.socket_id, /^\d+\.\d+$/);
    assert.equal(est.data.activity_timeout, 120);
    const pong = await raw.ping();
    assert.equal(pong.event, 'pusher:pong');
  });

  it('an unknown app key: pusher:error 4001, closed with 4001, no reconnect loop', async () => {
    const raw = await RawClient.open(server, 'no-such-key', { established: false });
    const err = await raw.next('pusher:error', 3000);
    assert.equal(err.data.code, 4001, err.raw);
    const closed = await raw.closedWithin(3000);
    assert.equal(closed.code, 4001, `close code ${closed.code} ${closed.reason}`);

    const p = client(server, { key: 'no-such-key' });
    const states = [];
    const errors = [];
    p.connection.bind('state_change', (s) => states.push(s.current));
    p.connection.bind('error', (e) => errors.push(e));
    await until(() => errors.length > 0, 5000, 'an error event');
    assert.equal(errors[0].error?.data?.code, 4001, JSON.stringify(errors[0]));
    await sleep(2500);                       // pusher-js would retry within 1 s on a backoff code
    assert.ok(['disconnected', 'failed'].includes(p.connection.state),
      `state ${p.connection.state} (changes: ${states.join(' > ')})`);
    assert.equal(states.filter((s) => s === 'connecting').length, 0,
      `pusher-js must not reconnect after 4001 (changes: ${states.join(' > ')})`);
    assert.equal(errors.length, 1, 'one error, no retries');
  });

  it('pusher-js\'s own keep-alive pings are answered: an idle connection stays connected', async () => {
    const p = await connected(server, app, { activityTimeout: 400, pongTimeout: 1000 });
    const id = p.connection.socket_id;
    const states = [];
    p.connection.bind('state_change', (s) => states.push(s.current));
    await sleep(3000);                       // several ping/pong rounds
    assert.deepEqual(states, [], 'no reconnect');
    assert.equal(p.connection.state, 'connected');
    assert.equal(p.connection.socket_id, id);
  });

  it('an unsupported (4007) or missing (4008) protocol version is refused', async () => {
    const raw = await RawClient.open(server, app.key, { query: '?protocol=1&client=js&version=1.0', established: false });
    const err = await raw.next('pusher:error', 3000);
    assert.equal(err.data.code, 4007, err.raw);
    assert.equal((await raw.closedWithin(3000)).code, 4007);
    const none = await RawClient.open(server, app.key, { query: '', established: false });
    const err2 = await none.next('pusher:error', 3000);
    assert.equal(err2.data.code, 4008, err2.raw);
    assert.equal((await none.closedWithin(3000)).code, 4008);
  });
});

describe('public channels', { concurrency: true }, () => {
  it('an SDK trigger reaches a subscriber', async () => {
    const p = await connected(server, app);
    const name = uid('public-');
    const ch = await subscribed(p, name);
    const got = nextEvent(ch, 'greeting');
    const res = await api.trigger(name, 'greeting', { text: 'hello', n: 1 });
    assert.equal(res.status, 200);
    assert.deepEqual(await got, { text: 'hello', n: 1 });
    // A string payload arrives as that string.
    const got2 = nextEvent(ch, 'plain');
    await api.trigger(name, 'plain', 'just text');
    assert.equal(await got2, 'just text');
  });

  it('one trigger to several channels', async () => {
    const p = await connected(server, app);
    const a = uid('multi-a-');
    const b = uid('multi-b-');
    const [ca, cb] = await Promise.all([subscribed(p, a), subscribed(p, b)]);
    const ga = nextEvent(ca, 'both');
    const gb = nextEvent(cb, 'both');
    await api.trigger([a, b], 'both', { ok: true });
    assert.deepEqual(await ga, { ok: true });
    assert.deepEqual(await gb, { ok: true });
  });

  it('socket_id excludes that connection only', async () => {
    const name = uid('excl-');
    const [p1, p2] = await Promise.all([connected(server, app), connected(server, app)]);
    const [c1, c2] = await Promise.all([subscribed(p1, name), subscribed(p2, name)]);
    const seen1 = record(c1);
    const got2 = nextEvent(c2, 'news');
    await api.trigger(name, 'news', { v: 1 }, { socket_id: p1.connection.socket_id });
    assert.deepEqual(await got2, { v: 1 });
    await nothingWithin(seen1, 400, 0, (e) => e.event === 'news');
  });

  it('batch trigger delivers every event, in order per channel', async () => {
    const p = await connected(server, app);
    const a = uid('batch-a-');
    const b = uid('batch-b-');
    const [ca, cb] = await Promise.all([subscribed(p, a), subscribed(p, b)]);
    const seenA = record(ca);
    const seenB = record(cb);
    const res = await api.triggerBatch([
      { channel: a, name: 'e1', data: { i: 1 } },
      { channel: b, name: 'e2', data: { i: 2 } },
      { channel: a, name: 'e3', data: 'three' },
    ]);
    assert.equal(res.status, 200);
    await until(() => seenA.length >= 2 && seenB.length >= 1, 4000, 'batch events');
    assert.deepEqual(seenA.map((e) => [e.event, e.data]), [['e1', { i: 1 }], ['e3', 'three']]);
    assert.deepEqual(seenB.map((e) => [e.event, e.data]), [['e2', { i: 2 }]]);
  });

  it('unsubscribing stops delivery; a witness still gets the event', async () => {
    const name = uid('unsub-');
    const [p1, p2] = await Promise.all([connected(server, app), connected(server, app)]);
    const [c1, c2] = await Promise.all([subscribed(p1, name), subscribed(p2, name)]);
    const seen1 = record(c1);
    p1.unsubscribe(name);
    await sleep(300);                         // the unsubscribe frame reaches the server
    const got2 = nextEvent(c2, 'late');
    await api.trigger(name, 'late', { x: 1 });
    await got2;
    await nothingWithin(seen1, 400, 0, (e) => e.event === 'late');
  });

  it('subscription_count: pusher-js learns how many connections a channel has', async () => {
    const name = uid('count-');
    const [p1, p2] = await Promise.all([connected(server, app), connected(server, app)]);
    const c1 = await subscribed(p1, name);
    await until(() => c1.subscriptionCount === 1, 3000, 'subscriptionCount 1');
    const counts = [];
    c1.bind('pusher:subscription_count', (d) => counts.push(d.subscription_count));
    await subscribed(p2, name);
    await until(() => c1.subscriptionCount === 2, 3000, `subscriptionCount 2 (got ${c1.subscriptionCount})`);
    assert.deepEqual(counts, [2]);
    p2.unsubscribe(name);
    await until(() => c1.subscriptionCount === 1, 3000, `subscriptionCount back to 1 (got ${c1.subscriptionCount})`);
  });

  it('subscription_count is off unless the app turns it on, as on Pusher', async () => {
    const plain = makeApp('102');
    const other = await startAtrium({ apps: [plain] });
    const name = uid('nocount-');
    const raw1 = await RawClient.open(other, plain.key);
    const raw2 = await RawClient.open(other, plain.key);
    await raw1.subscribe(name);
    await raw2.subscribe(name);
    await raw1.ping();
    assert.equal(raw1.frames.filter((f) => f.event === 'pusher_internal:subscription_count').length, 0);
    await other.stop();
  });

  it('events on a channel nobody subscribes to are accepted and go nowhere', async () => {
    const res = await api.trigger(uid('nobody-'), 'e', { a: 1 });
    assert.equal(res.status, 200);
  });

  it('a subscription to a malformed channel name is refused; the connection stays usable', async () => {
    const raw = await RawClient.open(server, app.key);
    const reply = await raw.request({ event: 'pusher:subscribe', data: { channel: 'bad name!' } },
      (f) => f.event === 'pusher:error' || /subscription_(error|succeeded)/.test(f.event));
    assert.notEqual(reply.event, 'pusher_internal:subscription_succeeded', reply.raw);
    await raw.ping();
    await raw.subscribe(uid('fine-'));
  });
});
