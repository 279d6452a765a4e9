// Presence channels: members by user (not by connection), the HTTP API's user_count and
// users, and the limits (100 members, 2 KB of member info).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startAtrium, makeApp, sdk, connected, until, nextEvent, subscribed, record, uid, sleep,
  localAuthorizer, RawClient, cleanup,
} from './helpers.mjs';

const app = makeApp('401');
let server;
let api;

before(async () => {
  server = await startAtrium({ apps: [app] });
  api = sdk(server, app);
});
after(cleanup);

// A pusher-js client that joins presence channels as `user`.
const as = (user, info = { name: user }) =>
  connected(server, app, { channelAuthorization: localAuthorizer(api, () => ({ user_id: user, user_info: info })) });

const getJson = async (path, params) => (await api.get({ path, params })).json();

describe('presence channels', { concurrency: true }, () => {
  it('member_added / member_removed only on the first / last connection of a user', async () => {
    const name = uid('presence-room-');
    const u1 = uid('alice');
    const u2 = uid('bob');
    const observer = await as(u2, { name: 'Bob' });
    const obs = await subscribed(observer, name);
    const seen = record(obs);

    assert.equal(obs.members.count, 1);
    assert.deepEqual(obs.members.me, { id: u2, info: { name: 'Bob' } });

    const [c1a, c1b] = await Promise.all([as(u1, { name: 'Alice' }), as(u1, { name: 'Alice' })]);
    const joined = await subscribed(c1a, name);
    // The joiner sees everyone: here / members.count / me.
    const here = [];
    joined.members.each((m) => here.push(m));
    assert.deepEqual(here.sort((a, b) => a.id.localeCompare(b.id)),
      [{ id: u1, info: { name: 'Alice' } }, { id: u2, info: { name: 'Bob' } }].sort((a, b) => a.id.localeCompare(b.id)));
    assert.equal(joined.members.count, 2);
    assert.deepEqual(joined.members.me, { id: u1, info: { name: 'Alice' } });

    await until(() => seen.some((e) => e.event === 'pusher:member_added'), 4000, 'member_added');
    assert.deepEqual(seen.filter((e) => e.event === 'pusher:member_added').map((e) => e.data),
      [{ id: u1, info: { name: 'Alice' } }]);
    assert.equal(obs.members.count, 2);

    // A second connection of the same user: no second member_added.
    const second = await subscribed(c1b, name);
    assert.equal(second.members.count, 2, 'still two users');
    await sleep(400);
    assert.equal(seen.filter((e) => e.event === 'pusher:member_added').length, 1);

    const counts = await getJson(`/channels/${name}`, { info: 'user_count' });
    assert.equal(counts.occupied, true);
    assert.equal(counts.user_count, 2, JSON.stringify(counts));
    const users = await getJson(`/channels/${name}/users`);
    assert.deepEqual(users.users.map((u) => u.id).sort(), [u1, u2].sort(), JSON.stringify(users));

    // The first of the user's two connections leaves: no member_removed.
    c1a.unsubscribe(name);
    await sleep(500);
    assert.equal(seen.filter((e) => e.event === 'pusher:member_removed').length, 0, 'u1 is still here');
    assert.equal(obs.members.count, 2);

    // The last one leaves (by disconnecting): member_removed.
    c1b.disconnect();
    const removed = await until(() => seen.find((e) => e.event === 'pusher:member_removed'), 4000, 'member_removed');
    assert.deepEqual(removed.data, { id: u1, info: { name: 'Alice' } });
    assert.equal(obs.members.count, 1);
    await until(async () => (await getJson(`/channels/${name}`, { info: 'user_count' })).user_count === 1, 3000, 'user_count 1');
  });

  it('subscription_succeeded carries presence {ids, hash, count} as Pusher sends it', async () => {
    const name = uid('presence-raw-');
    const user = uid('carol');
    const raw = await RawClient.open(server, app.key);
    const channelData = { user_id: user, user_info: { name: 'Carol' } };
    const a = api.authorizeChannel(raw.socketId, name, channelData);
    const ok = await raw.subscribe(name, a);
    assert.equal(typeof JSON.parse(ok.raw).data, 'string', 'data is JSON text');
    assert.deepEqual(ok.data.presence, { ids: [user], hash: { [user]: { name: 'Carol' } }, count: 1 });
  });

  it('channel_data whose user_id is a number is accepted and reported as a string', async () => {
    const name = uid('presence-num-');
    const raw = await RawClient.open(server, app.key);
    const ok = await raw.subscribe(name, api.authorizeChannel(raw.socketId, name, { user_id: 42 }));
    assert.deepEqual(ok.data.presence.ids, ['42']);
  });

  it('member info over 2 KB is refused', async () => {
    const name = uid('presence-fat-');
    const raw = await RawClient.open(server, app.key);
    const data = { user_id: uid('fat'), user_info: { blob: 'x'.repeat(3000) } };
    const reply = await raw.request({ event: 'pusher:subscribe', data: { channel: name, ...api.authorizeChannel(raw.socketId, name, data) } },
      (f) => f.event === 'pusher:error' || (f.channel === name && /subscription_(succeeded|error)$/.test(f.event)));
    assert.equal(reply.event, 'pusher:subscription_error', reply.raw.slice(0, 300));
    assert.equal(reply.data.type, 'LimitReached', reply.raw.slice(0, 300));
    await raw.ping();
  });

  it('the 101st member is refused; another connection of a member is not', async () => {
    const name = uid('presence-full-');
    const clients = await Promise.all(Array.from({ length: 100 }, () => RawClient.open(server, app.key)));
    await Promise.all(clients.map((c, i) =>
      c.subscribe(name, api.authorizeChannel(c.socketId, name, { user_id: `m${i}` }), 8000)));
    const info = await getJson(`/channels/${name}`, { info: 'user_count' });
    assert.equal(info.user_count, 100);

    const extra = await RawClient.open(server, app.key);
    const reply = await extra.request({ event: 'pusher:subscribe',
      data: { channel: name, ...api.authorizeChannel(extra.socketId, name, { user_id: 'm100' }) } },
    (f) => f.event === 'pusher:error' || (f.channel === name && /subscription_(succeeded|error)$/.test(f.event)));
    assert.equal(reply.event, 'pusher:subscription_error', `101st member: ${reply.raw}`);
    assert.equal(reply.data.type, 'LimitReached', reply.raw);
    await extra.ping();
    assert.equal((await getJson(`/channels/${name}`, { info: 'user_count' })).user_count, 100);

    // m0 on a second connection is still one of the 100.
    const again = await RawClient.open(server, app.key);
    await again.subscribe(name, api.authorizeChannel(again.socketId, name, { user_id: 'm0' }));
    await Promise.all([...clients, extra, again].map((c) => c.close()));
  });

  it('channel_data must be signed: changing it after signing is refused', async () => {
    const name = uid('presence-forged-');
    const raw = await RawClient.open(server, app.key);
    const a = api.authorizeChannel(raw.socketId, name, { user_id: 'honest' });
    const reply = await raw.request({ event: 'pusher:subscribe',
      data: { channel: name, auth: a.auth, channel_data: JSON.stringify({ user_id: 'admin' }) } },
    (f) => f.event === 'pusher:error' || (f.channel === name && /subscription_(succeeded|error)$/.test(f.event)));
    assert.notEqual(reply.event, 'pusher_internal:subscription_succeeded', reply.raw);
  });

  it('a presence member sees member_added for a user who joins, with user_info', async () => {
    const name = uid('presence-info-');
    const [a, b] = await Promise.all([as(uid('dora'), { role: 'host' }), as('eve-' + uid(''), { role: 'guest', tags: ['x'] })]);
    const ca = await subscribed(a, name);
    const added = nextEvent(ca, 'pusher:member_added');
    await subscribed(b, name);
    const m = await added;
    assert.deepEqual(m.info, { role: 'guest', tags: ['x'] });
  });
});
