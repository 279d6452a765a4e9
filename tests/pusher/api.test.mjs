// The HTTP API under /apps/ID: channel queries through the `pusher` SDK, Pusher's
// signature scheme checked with hand-made requests (bad signature, stale timestamp,
// tampered body), size limits, and two apps on one server kept apart.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startAtrium, makeApp, sdk, connected, until, nextEvent, subscribed, record, uid, sleep,
  localAuthorizer, rawHttp, RawClient, cleanup,
} from './helpers.mjs';

const appA = makeApp('701');
const appB = makeApp('702');
let server;
let apiA;
let apiB;

before(async () => {
  // Both apps from the environment (ATRIUM_PUSHER_APPS, comma-separated), to cover that path.
  server = await startAtrium({ env: { ATRIUM_PUSHER_APPS: [appA, appB].map((a) => `${a.id}:${a.key}:${a.secret}`).join(',') } });
  apiA = sdk(server, appA);
  apiB = sdk(server, appB);
});
after(cleanup);

const hmac = (secret, text) => crypto.createHmac('sha256', secret).update(text).digest('hex');
const md5 = (text) => crypto.createHash('md5').update(text).digest('hex');

// A request signed as Pusher's REST API wants it; `tweak` edits the parts before sending.
function signedRequest(app, method, path, { body, params = {}, timestamp = Math.floor(Date.now() / 1000), secret = app.secret, key = app.key, tweak } = {}) {
  const q = { auth_key: key, auth_timestamp: String(timestamp), auth_version: '1.0', ...params };
  if (body !== undefined) q.body_md5 = md5(body);
  const query = Object.keys(q).sort().map((k) => `${k}=${q[k]}`).join('&');
  let signature = hmac(secret, [method, path, query].join('\n'));
  const parts = { method, path, query, signature, body };
  if (tweak) tweak(parts);
  return rawHttp(`${server.origin}${parts.path}?${parts.query}&auth_signature=${parts.signature}`, {
    method, body: parts.body, headers: parts.body !== undefined ? { 'content-type': 'application/json' } : {},
  });
}

const eventBody = (channel, name = 'e', data = '{"x":1}') => JSON.stringify({ name, channels: [channel], data });

describe('HTTP API', { concurrency: true }, () => {
  it('GET /channels with filter_by_prefix and info=user_count; /channels/NAME; /channels/NAME/users', async () => {
    const tag = uid('q');
    const pub = `${tag}-news`;
    const pres = `presence-${tag}-lobby`;
    const p1 = await connected(server, appA, { channelAuthorization: localAuthorizer(apiA, () => ({ user_id: 'u1' })) });
    const p2 = await connected(server, appA, { channelAuthorization: localAuthorizer(apiA, () => ({ user_id: 'u2', user_info: { n: 2 } })) });
    await Promise.all([subscribed(p1, pub), subscribed(p1, pres), subscribed(p2, pres)]);

    const all = await (await apiA.get({ path: '/channels' })).json();
    assert.ok(all.channels[pub], `${pub} listed: ${JSON.stringify(all)}`);
    assert.ok(all.channels[pres], `${pres} listed`);

    const onlyPresence = await (await apiA.get({ path: '/channels', params: { filter_by_prefix: `presence-${tag}`, info: 'user_count' } })).json();
    assert.deepEqual(onlyPresence, { channels: { [pres]: { user_count: 2 } } });

    const onlyPub = await (await apiA.get({ path: '/channels', params: { filter_by_prefix: tag } })).json();
    assert.deepEqual(Object.keys(onlyPub.channels), [pub]);

    const one = await (await apiA.get({ path: `/channels/${pres}`, params: { info: 'user_count' } })).json();
    assert.equal(one.occupied, true);
    assert.equal(one.user_count, 2);

    const pubInfo = await (await apiA.get({ path: `/channels/${pub}` })).json();
    assert.equal(pubInfo.occupied, true);

    const empty = await (await apiA.get({ path: `/channels/${tag}-nobody` })).json();
    assert.equal(empty.occupied, false);

    const users = await (await apiA.get({ path: `/channels/${pres}/users` })).json();
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['u1', 'u2']);

    // user_count only makes sense for presence channels: Pusher answers 400.
    await assert.rejects(apiA.get({ path: '/channels', params: { filter_by_prefix: tag, info: 'user_count' } }),
      (e) => e.status === 400);
    // /users of a non-presence channel: 400.
    await assert.rejects(apiA.get({ path: `/channels/${pub}/users` }), (e) => e.status === 400);
  });

  it('a correctly hand-signed request is accepted (the test signer is right)', async () => {
    const ch = uid('signed-');
    const res = await signedRequest(appA, 'POST', `/apps/${appA.id}/events`, { body: eventBody(ch) });
    assert.equal(res.status, 200, res.text);
  });

  it('a bad signature: 401 and nothing delivered', async () => {
    const ch = uid('guarded-');
    const p = await connected(server, appA);
    const sub = await subscribed(p, ch);
    const seen = record(sub);
    const res = await signedRequest(appA, 'POST', `/apps/${appA.id}/events`, {
      body: eventBody(ch, 'forged'), tweak: (r) => { r.signature = r.signature.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')); },
    });
    assert.equal(res.status, 401, res.text);
    const wrongSecret = await signedRequest(appA, 'POST', `/apps/${appA.id}/events`, { body: eventBody(ch, 'forged'), secret: 'guess' });
    assert.equal(wrongSecret.status, 401, wrongSecret.text);
    const noSig = await rawHttp(`${server.origin}/apps/${appA.id}/events`, { method: 'POST', body: eventBody(ch, 'forged'), headers: { 'content-type': 'application/json' } });
    assert.equal(noSig.status, 401, noSig.text);
    // A body other than the signed one (body_md5 no longer matches).
    const tampered = await signedRequest(appA, 'POST', `/apps/${appA.id}/events`, {
      body: eventBody(ch, 'forged'), tweak: (r) => { r.body = eventBody(ch, 'forged', '{"x":2}'); },
    });
    assert.equal(tampered.status, 401, tampered.text);
    // Then a good one, to know the subscriber would have seen them.
    const good = nextEvent(sub, 'real');
    await apiA.trigger(ch, 'real', {});
    await good;
    assert.deepEqual(seen.filter((e) => e.event === 'forged'), []);
  });

  it('a stale auth_timestamp (over 600 s old) is refused with 401', async () => {
    const res = await signedRequest(appA, 'POST', `/apps/${appA.id}/events`, {
      body: eventBody(uid('stale-')), timestamp: Math.floor(Date.now() / 1000) - 700,
    });
    assert.equal(res.status, 401, res.text);
    const future = await signedRequest(appA, 'GET', `/apps/${appA.id}/channels`, { timestamp: Math.floor(Date.now() / 1000) + 700 });
    assert.equal(future.status, 401, future.text);
  });

  it('a body over 1 MB: 413', async () => {
    const big = JSON.stringify({ name: 'e', channels: [uid('big-')], data: 'x'.repeat((1 << 20) + 1000) });
    const res = await signedRequest(appA, 'POST', `/apps/${appA.id}/events`, { body: big });
    assert.equal(res.status, 413, `status ${res.status} ${res.error ?? ''} ${res.text.slice(0, 200)}`);
    // Still serving.
    const ok = await apiA.get({ path: '/channels' });
    assert.equal(ok.status, 200);
  });

  it('event data over 100 KB is refused with 413 and not delivered', async () => {
    const ch = uid('fat-');
    const p = await connected(server, appA);
    const sub = await subscribed(p, ch);
    const seen = record(sub);
    await assert.rejects(apiA.trigger(ch, 'fat', 'x'.repeat(101 * 1024)), (e) => e.status === 413);
    await sleep(300);
    assert.deepEqual(seen.filter((e) => e.event === 'fat'), []);
  });

  it('a batch of more than 10 events is refused with 400; 10 are fine', async () => {
    const ch = uid('batch-');
    const p = await connected(server, appA);
    const sub = await subscribed(p, ch);
    const seen = record(sub);
    const batch = (n) => Array.from({ length: n }, (_, i) => ({ channel: ch, name: `b${n}`, data: { i } }));
    await assert.rejects(apiA.triggerBatch(batch(11)), (e) => e.status === 400);
    const res = await apiA.triggerBatch(batch(10));
    assert.equal(res.status, 200);
    await until(() => seen.filter((e) => e.event === 'b10').length === 10, 4000, '10 events');
    assert.deepEqual(seen.filter((e) => e.event === 'b11'), []);
  });

  it('names over 200 characters and more than 100 channels are refused with 400', async () => {
    const longChannel = await signedRequest(appA, 'POST', `/apps/${appA.id}/events`, { body: eventBody('c'.repeat(201)) });
    assert.equal(longChannel.status, 400, longChannel.text);
    const longEvent = await signedRequest(appA, 'POST', `/apps/${appA.id}/events`, { body: eventBody(uid('ln-'), 'e'.repeat(201)) });
    assert.equal(longEvent.status, 400, longEvent.text);
    const many = JSON.stringify({ name: 'e', data: '{}', channels: Array.from({ length: 101 }, (_, i) => `c${i}`) });
    const tooMany = await signedRequest(appA, 'POST', `/apps/${appA.id}/events`, { body: many });
    assert.equal(tooMany.status, 400, tooMany.text);
    const notJson = await signedRequest(appA, 'POST', `/apps/${appA.id}/events`, { body: '{not json' });
    assert.equal(notJson.status, 400, notJson.text);
  });

  it('two apps are isolated: same channel name, triggers do not cross, credentials do not cross', async () => {
    const ch = uid('shared-');
    const [pa, pb] = await Promise.all([connected(server, appA), connected(server, appB)]);
    const [sa, sb] = await Promise.all([subscribed(pa, ch), subscribed(pb, ch)]);
    const seenA = record(sa);
    const seenB = record(sb);
    const gotA = nextEvent(sa, 'for-a');
    await apiA.trigger(ch, 'for-a', { app: 'A' });
    assert.deepEqual(await gotA, { app: 'A' });
    const gotB = nextEvent(sb, 'for-b');
    await apiB.trigger(ch, 'for-b', { app: 'B' });
    assert.deepEqual(await gotB, { app: 'B' });
    await sleep(300);
    assert.deepEqual(seenA.filter((e) => e.event === 'for-b'), []);
    assert.deepEqual(seenB.filter((e) => e.event === 'for-a'), []);
    // B's key and secret against A's path: 401.
    const cross = await signedRequest(appB, 'POST', `/apps/${appA.id}/events`, { body: eventBody(ch, 'for-a') });
    assert.equal(cross.status, 401, cross.text);
    // A subscriber of app B does not show up in app A's channel list... both list it, each its own.
    const infoA = await (await apiA.get({ path: `/channels/${ch}` })).json();
    assert.equal(infoA.occupied, true);
    pb.unsubscribe(ch);
    await until(async () => (await (await apiB.get({ path: `/channels/${ch}` })).json()).occupied === false, 3000, 'B vacant');
    assert.equal((await (await apiA.get({ path: `/channels/${ch}` })).json()).occupied, true, 'A still occupied');
    // Client auth signed for app A is refused on app B's socket.
    const rawB = await RawClient.open(server, appB.key);
    const priv = uid('private-x-');
    const reply = await rawB.request({ event: 'pusher:subscribe', data: { channel: priv, auth: apiA.authorizeChannel(rawB.socketId, priv).auth } },
      (f) => f.event === 'pusher:error' || /subscription_(succeeded|error)$/.test(f.event));
    assert.notEqual(reply.event, 'pusher_internal:subscription_succeeded', reply.raw);
  });

  it('an unknown app id is refused', async () => {
    const ghost = { id: '999999', key: appA.key, secret: appA.secret };
    const res = await signedRequest(ghost, 'GET', '/apps/999999/channels');
    assert.ok(res.status === 401 || res.status === 404, `status ${res.status} ${res.text}`);
  });
});
