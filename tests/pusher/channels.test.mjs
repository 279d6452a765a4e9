// pusher-js's own integration scenarios (spec/javascripts/integration/core/pusher_spec/
// test_builder.js in the pusher-js package), run against Atrium instead of Pusher's
// service: the subscription state machine (sub-sub, sub-unsub-sub, ...), public channels
// fed over the REST API, client events and presence members. Two shared connections as
// in the original; channel auth through an HTTP endpoint (transport 'ajax') signing with
// the `pusher` SDK. Fixed 5 s sleeps of the original became bounded waits.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startAtrium, makeApp, sdk, connected, until, sleep, uid, authServer, cleanup,
} from './helpers.mjs';

const app = makeApp('201');
let server;
let api;
let pusher1;
let pusher2;

const memberOf = (p) => ({
  id: p.connection.socket_id,
  info: {
    name: `Integration ${p.connection.socket_id}`,
    email: `integration-${p.connection.socket_id}@example.com`,
  },
});

before(async () => {
  server = await startAtrium({ apps: [app] });
  api = sdk(server, app);
  const auth = await authServer(api, {
    presence: (socketId) => ({
      user_id: socketId,
      user_info: { name: `Integration ${socketId}`, email: `integration-${socketId}@example.com` },
    }),
  });
  const opts = { channelAuthorization: { endpoint: auth.endpoint, transport: 'ajax' } };
  [pusher1, pusher2] = await Promise.all([connected(server, app, opts), connected(server, app, opts)]);
});
after(cleanup);

function subscribe(pusher, channelName, callback) {
  const channel = pusher.subscribe(channelName);
  channel.bind('pusher:subscription_succeeded', (param) => callback(channel, param));
  return channel;
}

function state(pusher, name) {
  const c = pusher.channel(name);
  return c && [c.subscribed, c.subscriptionPending, c.subscriptionCancelled];
}

// The server no longer counts the channel as occupied (after an unsubscribe).
async function vacant(name) {
  if (name.startsWith('presence-') || name.startsWith('private-')) return;  // checked for public
  await until(async () => {
    const res = await api.get({ path: `/channels/${name}` });
    return (await res.json()).occupied === false;
  }, 4000, `${name} to be vacant`);
}

const trig = (name, event, data) => api.trigger(name, event, data);

function buildPublicChannelTests(prefix = '') {
  it('should subscribe and receive a message sent via REST API', async () => {
    const name = uid(`${prefix}integration`);
    let subscribedCount = 0;
    let received = null;
    const channel = subscribe(pusher1, name, () => { subscribedCount += 1; });
    await until(() => subscribedCount, 5000, 'subscription to succeed');
    channel.bind('integration_event', (m) => { received = m; });
    await trig(name, 'integration_event', { x: 1, y: 'z' });
    await until(() => received !== null, 5000, 'message to get delivered');
    assert.deepEqual(received, { x: 1, y: 'z' });
    pusher1.unsubscribe(name);
  });

  it('should not receive messages after unsubscribing', async () => {
    const name = uid(`${prefix}integration`);
    let subscribedCount = 0;
    let received = null;
    const channel = subscribe(pusher1, name, () => { subscribedCount += 1; });
    await until(() => subscribedCount, 5000, 'subscription to succeed');
    channel.bind('after_unsubscribing', (m) => { received = m; });
    pusher1.unsubscribe(name);
    await vacant(name);
    await trig(name, 'after_unsubscribing', {});
    await sleep(1000);
    assert.equal(received, null);
  });

  it('should handle unsubscribing as an idempotent operation', async () => {
    const name = uid(`${prefix}integration`);
    let subscribedCount = 0;
    subscribe(pusher1, name, () => { subscribedCount += 1; });
    await until(() => subscribedCount, 5000, 'subscription to succeed');
    pusher1.unsubscribe(name);
    pusher1.unsubscribe(name);
    pusher1.unsubscribe(name);
    await vacant(name);
    assert.equal(pusher1.connection.state, 'connected');
  });

  it('should handle cancelling pending subscription', async () => {
    const name = uid(`${prefix}integration`);
    let received = null;
    const channel = pusher1.subscribe(name);
    channel.bind('after_unsubscribing', (m) => { received = m; });
    pusher1.unsubscribe(name);
    await until(() => !channel.subscriptionPending, 5000, 'subscription to settle');
    await vacant(name);
    await trig(name, 'after_unsubscribing', {});
    await sleep(1000);
    assert.equal(channel.subscribed, false);
    assert.equal(received, null);
  });

  it('should handle reinstating cancelled pending subscription', async () => {
    const name = uid(`${prefix}integration`);
    let received = null;
    const channel = pusher1.subscribe(name);
    channel.bind('after_subscribing', (m) => { received = m; });
    pusher1.unsubscribe(name);
    pusher1.subscribe(name);
    await until(() => !channel.subscriptionPending, 5000, 'subscription to succeed');
    await trig(name, 'after_subscribing', {});
    await until(() => received !== null, 5000, 'the event after reinstating');
    assert.equal(channel.subscribed, true);
  });
}

function buildSubscriptionStateTests(prefix = '') {
  it(`${prefix || 'public '}sub-sub = sub`, async () => {
    const name = uid(`${prefix}integration`);
    pusher1.subscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, false]);
    pusher1.subscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, false]);
    await until(() => pusher1.channel(name).subscribed, 5000, 'subscription to finish');
    assert.deepEqual(state(pusher1, name), [true, false, false]);
  });

  it(`${prefix || 'public '}sub-wait-sub = sub`, async () => {
    const name = uid(`${prefix}integration`);
    pusher1.subscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, false]);
    await until(() => pusher1.channel(name).subscribed, 5000, 'subscription to finish');
    assert.deepEqual(state(pusher1, name), [true, false, false]);
    pusher1.subscribe(name);
    assert.deepEqual(state(pusher1, name), [true, false, false]);
  });

  it(`${prefix || 'public '}sub-unsub = NOP`, async () => {
    const name = uid(`${prefix}integration`);
    pusher1.subscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, false]);
    pusher1.unsubscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, true]);
    await until(() => pusher1.channel(name) === undefined, 5000, 'the cancelled channel to go');
    await vacant(name);
  });

  it(`${prefix || 'public '}sub-wait-unsub = NOP`, async () => {
    const name = uid(`${prefix}integration`);
    pusher1.subscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, false]);
    await until(() => pusher1.channel(name).subscribed, 5000, 'subscription to finish');
    assert.deepEqual(state(pusher1, name), [true, false, false]);
    pusher1.unsubscribe(name);
    assert.equal(pusher1.channel(name), undefined);
    await vacant(name);
  });

  it(`${prefix || 'public '}sub-unsub-sub = sub`, async () => {
    const name = uid(`${prefix}integration`);
    pusher1.subscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, false]);
    pusher1.unsubscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, true]);
    pusher1.subscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, false]);
    await until(() => pusher1.channel(name).subscribed, 5000, 'subscription to finish');
    assert.deepEqual(state(pusher1, name), [true, false, false]);
  });

  it(`${prefix || 'public '}sub-unsub-wait-sub = sub`, async () => {
    const name = uid(`${prefix}integration`);
    pusher1.subscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, false]);
    pusher1.unsubscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, true]);
    await until(() => pusher1.channel(name) === undefined, 5000, 'the cancelled channel to go');
    pusher1.subscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, false]);
    await until(() => pusher1.channel(name).subscribed, 5000, 'subscription to finish');
    assert.deepEqual(state(pusher1, name), [true, false, false]);
  });

  it(`${prefix || 'public '}sub-unsub-unsub = NOP`, async () => {
    const name = uid(`${prefix}integration`);
    pusher1.subscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, false]);
    pusher1.unsubscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, true]);
    pusher1.unsubscribe(name);
    assert.deepEqual(state(pusher1, name), [false, true, true]);
    await until(() => pusher1.channel(name) === undefined, 5000, 'the cancelled channel to go');
    await vacant(name);
  });
}

function buildClientEventsTests(prefix) {
  it(`${prefix}should receive a client event sent by another connection`, async () => {
    const name = uid(`${prefix}integration_client_events`);
    let s1 = 0;
    let s2 = 0;
    const got1 = [];
    const got2 = [];
    const channel1 = subscribe(pusher1, name, () => { s1 += 1; });
    const channel2 = subscribe(pusher2, name, () => { s2 += 1; });
    await until(() => s1 > 0 && s2 > 0, 5000, 'both connections to subscribe');
    channel1.bind('client-test', (d, meta) => got1.push([d, meta]));
    channel2.bind('client-test', (d, meta) => got2.push([d, meta]));
    pusher1.send_event('client-test', { foo: 'bar' }, name);
    await until(() => got2.length, 5000, 'second connection to receive a message');
    assert.deepEqual(got2[0][0], { foo: 'bar' });
    if (prefix === 'presence-') {
      // Pusher adds the sender's user_id to client events on presence channels.
      assert.equal(got2[0][1]?.user_id, pusher1.connection.socket_id, 'user_id of the sender');
    }
    await sleep(300);
    assert.equal(got1.length, 0, 'the sender must not get its own client event');
    pusher1.unsubscribe(name);
    pusher2.unsubscribe(name);
  });

  it(`${prefix}should not receive a client event sent by itself`, async () => {
    const name = uid(`${prefix}integration_client_events`);
    let s = 0;
    const got = [];
    const channel = subscribe(pusher1, name, () => { s += 1; });
    await until(() => s > 0, 5000, 'connection to subscribe');
    channel.bind('client-test', (d) => got.push(d));
    pusher1.send_event('client-test', {}, name);
    await sleep(1000);
    assert.equal(got.length, 0);
    pusher1.unsubscribe(name);
  });
}

function buildPresenceChannelTests() {
  it("should get connection's member data", async () => {
    const name = uid('presence-integration_me');
    let members = null;
    subscribe(pusher1, name, (channel, ms) => { members = ms; });
    await until(() => members !== null, 5000, 'channel to subscribe');
    assert.deepEqual(members.me, memberOf(pusher1));
    assert.equal(members.count, 1);
  });

  it('should receive a member added event', async () => {
    const name = uid('presence-integration_member_added');
    let member = null;
    subscribe(pusher1, name, (channel) => {
      channel.bind('pusher:member_added', (m) => { member = m; });
      subscribe(pusher2, name, () => {});
    });
    await until(() => member !== null, 5000, 'the member added event');
    assert.deepEqual(member, memberOf(pusher2));
    pusher1.unsubscribe(name);
    pusher2.unsubscribe(name);
  });

  it('should receive a member removed event', async () => {
    const name = uid('presence-integration_member_removed');
    let member = null;
    subscribe(pusher2, name, (channel) => {
      channel.bind('pusher:member_added', () => {
        channel.bind('pusher:member_removed', (m) => { member = m; });
        pusher1.unsubscribe(name);
      });
      subscribe(pusher1, name, () => {});
    });
    await until(() => member !== null, 5000, 'the member removed event');
    assert.deepEqual(member, memberOf(pusher1));
    pusher2.unsubscribe(name);
  });

  it('should maintain correct members count', async () => {
    const name = uid('presence-integration_member_count');
    let s1 = 0;
    let s2 = 0;
    let added = 0;
    let removed = 0;
    const channel1 = subscribe(pusher1, name, () => { s1 += 1; });
    assert.equal(channel1.members.count, 0);
    await until(() => s1 > 0, 5000, 'first connection to subscribe');
    assert.equal(channel1.members.count, 1);
    channel1.bind('pusher:member_added', () => { added += 1; });
    const channel2 = subscribe(pusher2, name, () => { s2 += 1; });
    await until(() => s2 > 0, 5000, 'second connection to subscribe');
    assert.equal(channel2.members.count, 2);
    await until(() => added > 0, 5000, 'member added event');
    assert.equal(channel1.members.count, 2);
    channel2.bind('pusher:member_removed', () => { removed += 1; });
    pusher1.unsubscribe(name);
    await until(() => removed > 0, 5000, 'member removed event');
    assert.equal(channel2.members.count, 1);
    pusher2.unsubscribe(name);
  });

  it('should maintain correct members data', async () => {
    const name = uid('presence-integration_member_data');
    let s1 = 0;
    let s2 = 0;
    let added = 0;
    let removed = 0;
    const member1 = memberOf(pusher1);
    const member2 = memberOf(pusher2);
    const channel1 = subscribe(pusher1, name, () => { s1 += 1; });
    await until(() => s1 > 0, 5000, 'first connection to subscribe');
    assert.deepEqual(channel1.members.get(pusher1.connection.socket_id), member1);
    assert.equal(channel1.members.get(pusher2.connection.socket_id), null);
    assert.deepEqual(channel1.members.me, member1);
    channel1.bind('pusher:member_added', () => { added += 1; });
    const channel2 = subscribe(pusher2, name, () => { s2 += 1; });
    await until(() => s2 > 0, 5000, 'second connection to subscribe');
    assert.deepEqual(channel2.members.get(pusher1.connection.socket_id), member1);
    assert.deepEqual(channel2.members.get(pusher2.connection.socket_id), member2);
    assert.deepEqual(channel2.members.me, member2);
    await until(() => added > 0, 5000, 'member added event');
    assert.deepEqual(channel1.members.get(pusher1.connection.socket_id), member1);
    assert.deepEqual(channel1.members.get(pusher2.connection.socket_id), member2);
    channel2.bind('pusher:member_removed', () => { removed += 1; });
    pusher1.unsubscribe(name);
    await until(() => removed > 0, 5000, 'member removed event');
    assert.equal(channel2.members.get(pusher1.connection.socket_id), null);
    assert.deepEqual(channel2.members.get(pusher2.connection.socket_id), member2);
    pusher2.unsubscribe(name);
  });
}

describe('pusher-js integration scenarios against atrium', { concurrency: true }, () => {
  describe('with a public channel', { concurrency: true }, () => {
    buildPublicChannelTests('');
    buildSubscriptionStateTests('');
  });
  describe('with a private channel', { concurrency: true }, () => {
    buildSubscriptionStateTests('private-');
    buildClientEventsTests('private-');
  });
  describe('with a presence channel', { concurrency: true }, () => {
    buildSubscriptionStateTests('presence-');
    buildClientEventsTests('presence-');
    buildPresenceChannelTests();
  });
});
