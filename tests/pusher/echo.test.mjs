// Laravel Echo 2.x (broadcaster 'pusher') on pusher-js, as a Laravel front end sets it up,
// with the `pusher` SDK playing the Laravel back end (broadcast() and /broadcasting/auth).
//
// Echo's event names: listen('OrderShipped') means 'App\\Events\\OrderShipped' (its
// namespace, dots turned into backslashes); a leading dot ('.order.shipped') means the
// name as is. Laravel broadcasts with the class name unless the event has broadcastAs().
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import Echo from 'laravel-echo';
import {
  Pusher, startAtrium, makeApp, sdk, clientOptions, until, uid, sleep, authServer, onCleanup, cleanup,
} from './helpers.mjs';

const app = makeApp('901');
const masterKey = crypto.randomBytes(32).toString('base64');
let server;
let api;
let auth;
const people = new Map();           // socket_id -> {id, name}

before(async () => {
  server = await startAtrium({ apps: [app] });
  api = sdk(server, app, { encryptionMasterKeyBase64: masterKey });
  auth = await authServer(api, {
    presence: (socketId) => {
      const who = people.get(socketId);
      return { user_id: who.id, user_info: { id: who.id, name: who.name } };
    },
  });
});
after(cleanup);

// new Echo({...}) as resources/js/echo.js does it (Pusher passed in, no window in Node).
async function echo(person) {
  const e = new Echo({
    broadcaster: 'pusher',
    key: app.key,
    Pusher,
    ...clientOptions(server),
    authEndpoint: auth.endpoint,
    auth: { headers: { 'X-CSRF-TOKEN': 'test' } },
  });
  onCleanup(() => e.disconnect());
  await until(() => e.connector.pusher.connection.state === 'connected', 5000, 'Echo to connect');
  if (person) people.set(e.socketId(), person);
  return e;
}

const subscribedEcho = (channel) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('Echo channel did not subscribe within 5 s')), 5000);
  channel.subscribed(() => { clearTimeout(timer); resolve(channel); });
  channel.error((err) => { clearTimeout(timer); reject(new Error(`Echo channel error ${JSON.stringify(err)}`)); });
});

describe('Laravel Echo on atrium', { concurrency: true }, () => {
  it('channel().listen: namespaced class names and leading-dot names', async () => {
    const e = await echo();
    assert.equal(e.connectionStatus(), 'connected');
    assert.match(e.socketId(), /^\d+\.\d+$/);
    const name = uid('orders-');
    const got = [];
    const ch = e.channel(name)
      .listen('OrderShipped', (d) => got.push(['class', d]))
      .listen('.order.cancelled', (d) => got.push(['dot', d]));
    await subscribedEcho(ch);
    // What Laravel's PusherBroadcaster sends: event App\Events\OrderShipped, data JSON.
    await api.trigger(name, 'App\\Events\\OrderShipped', { order: { id: 1 } });
    await api.trigger(name, 'order.cancelled', { order: { id: 2 } });
    await until(() => got.length === 2, 4000, 'both events');
    assert.deepEqual(got, [['class', { order: { id: 1 } }], ['dot', { order: { id: 2 } }]]);
  });

  it('private().listen through /broadcasting/auth', async () => {
    const e = await echo();
    const name = uid('user.');
    const got = [];
    const ch = e.private(name).listen('.balance.updated', (d) => got.push(d));
    await subscribedEcho(ch);
    assert.ok(auth.calls.some((c) => c.form.channel_name === `private-${name}`), 'auth endpoint called');
    await api.trigger(`private-${name}`, 'balance.updated', { balance: 10 });
    await until(() => got.length === 1, 4000, 'the private event');
    assert.deepEqual(got[0], { balance: 10 });
  });

  it('join(): here, joining, leaving; whisper and listenForWhisper', async () => {
    const room = uid('chat.');
    const alice = await echo({ id: 'alice', name: 'Alice' });
    const bob = await echo({ id: 'bob', name: 'Bob' });
    let hereA = null;
    const joiningA = [];
    const leavingA = [];
    const whispersA = [];
    const chA = alice.join(room)
      .here((users) => { hereA = users; })
      .joining((u) => joiningA.push(u))
      .leaving((u) => leavingA.push(u))
      .listenForWhisper('typing', (d) => whispersA.push(d));
    await until(() => hereA !== null, 5000, 'alice here()');
    assert.deepEqual(hereA, [{ id: 'alice', name: 'Alice' }]);

    let hereB = null;
    const whispersB = [];
    const chB = bob.join(room)
      .here((users) => { hereB = users; })
      .listenForWhisper('typing', (d) => whispersB.push(d));
    await until(() => hereB !== null, 5000, 'bob here()');
    assert.deepEqual(hereB.map((u) => u.id).sort(), ['alice', 'bob']);
    await until(() => joiningA.length === 1, 4000, 'alice sees bob joining');
    assert.deepEqual(joiningA[0], { id: 'bob', name: 'Bob' });

    chB.whisper('typing', { name: 'Bob' });
    await until(() => whispersA.length === 1, 4000, 'alice gets the whisper');
    assert.deepEqual(whispersA[0], { name: 'Bob' });
    await sleep(300);
    assert.deepEqual(whispersB, [], 'a whisper is not echoed to its sender');

    // Laravel's broadcast to the presence channel reaches listen() too.
    const got = [];
    chA.listen('.message.sent', (d) => got.push(d));
    await api.trigger(`presence-${room}`, 'message.sent', { text: 'hi' });
    await until(() => got.length === 1, 4000, 'the presence broadcast');

    bob.leave(room);
    await until(() => leavingA.length === 1, 4000, 'alice sees bob leaving');
    assert.deepEqual(leavingA[0], { id: 'bob', name: 'Bob' });
  });

  it('encryptedPrivate(): the SDK encrypts, Echo hands over plain data', async () => {
    const e = await echo();
    const name = uid('vault.');
    const got = [];
    const ch = e.encryptedPrivate(name).listen('.secret.shared', (d) => got.push(d));
    await subscribedEcho(ch);
    await api.trigger(`private-encrypted-${name}`, 'secret.shared', { pin: '1234' });
    await until(() => got.length === 1, 4000, 'the decrypted event');
    assert.deepEqual(got[0], { pin: '1234' });
  });

  it('leave() unsubscribes: no more events', async () => {
    const e = await echo();
    const name = uid('news-');
    const got = [];
    const ch = e.channel(name).listen('.headline', (d) => got.push(d));
    await subscribedEcho(ch);
    await api.trigger(name, 'headline', { n: 1 });
    await until(() => got.length === 1, 4000, 'the first headline');
    e.leave(name);
    await until(async () => (await (await api.get({ path: `/channels/${name}` })).json()).occupied === false, 4000, 'vacant after leave');
    await api.trigger(name, 'headline', { n: 2 });
    await sleep(400);
    assert.equal(got.length, 1);
  });
});
