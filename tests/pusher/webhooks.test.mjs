// Webhooks: POSTed to --pusher-webhook URLs, signed (the `pusher` SDK's webhook().isValid()
// accepts them), batched as {time_ms, events}; member_removed and channel_vacated come
// ~3 s late and are dropped when the user / channel comes back meanwhile; failed POSTs
// are retried.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  startAtrium, makeApp, sdk, connected, until, subscribed, uid, sleep, localAuthorizer,
  webhookReceiver, RawClient, cleanup,
} from './helpers.mjs';

const app = makeApp('801');
const flaky = makeApp('802');
let server;
let api;
let apiFlaky;
let hooks;
let flakyHooks;

// A 127.0.0.1 port nothing listens on.
async function deadPort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

before(async () => {
  hooks = await webhookReceiver();
  flakyHooks = await webhookReceiver({ statuses: [500] });
  const dead = await deadPort();
  server = await startAtrium({
    apps: [app, flaky],
    webhooks: [[app.id, `${hooks.url}/pusher/webhook`],
      [flaky.id, `http://127.0.0.1:${dead}/nothing-here`], [flaky.id, `${flakyHooks.url}/hook`]],
  });
  api = sdk(server, app);
  apiFlaky = sdk(server, flaky);
});
after(cleanup);

const eventsFor = (receiver, channel) => receiver.events().filter((e) => e.channel === channel);
const waitHook = (receiver, pred, ms = 6000, what = 'a webhook') =>
  until(() => receiver.events().find(pred), ms, what);

describe('webhooks', { concurrency: true }, () => {
  it('every POST is signed for the SDK, JSON, {time_ms, events}', async () => {
    const ch = uid('signed-');
    const p = await connected(server, app);
    await subscribed(p, ch);
    await waitHook(hooks, (e) => e.channel === ch && e.name === 'channel_occupied');
    const post = hooks.hooks.find((h) => h.json?.events?.some((e) => e.channel === ch));
    assert.equal(post.headers['x-pusher-key'], app.key);
    assert.match(post.headers['x-pusher-signature'], /^[0-9a-f]{64}$/);
    const wh = api.webhook({ headers: post.headers, rawBody: post.rawBody });
    assert.equal(wh.isValid(), true, `SDK rejects the webhook: content-type ${post.headers['content-type']}`);
    assert.equal(typeof wh.getTime().getTime(), 'number');
    assert.ok(Math.abs(post.json.time_ms - Date.now()) < 10000, `time_ms ${post.json.time_ms}`);
    assert.ok(Array.isArray(wh.getEvents()));
    // Another secret does not validate it.
    const other = sdk(server, { ...app, secret: 'other' });
    assert.equal(other.webhook({ headers: post.headers, rawBody: post.rawBody }).isValid(), false);
  });

  it('channel_occupied at once, channel_vacated ~3 s after the last one leaves', async () => {
    const ch = uid('occ-');
    const [p1, p2] = await Promise.all([connected(server, app), connected(server, app)]);
    await subscribed(p1, ch);
    await waitHook(hooks, (e) => e.channel === ch && e.name === 'channel_occupied');
    await subscribed(p2, ch);
    p1.unsubscribe(ch);
    await sleep(300);
    assert.equal(eventsFor(hooks, ch).filter((e) => e.name !== 'channel_occupied').length, 0, 'still occupied');
    const left = Date.now();
    p2.unsubscribe(ch);
    const vacated = await waitHook(hooks, (e) => e.channel === ch && e.name === 'channel_vacated', 8000, 'channel_vacated');
    const delay = vacated.at - left;
    assert.ok(delay >= 2500 && delay < 6000, `channel_vacated after ${delay} ms`);
    assert.deepEqual(eventsFor(hooks, ch).map((e) => e.name), ['channel_occupied', 'channel_vacated']);
  });

  it('member_added at once, member_removed ~3 s later; the user\'s second connection adds nothing', async () => {
    const ch = uid('presence-hook-');
    const user = uid('ann');
    const auth = { channelAuthorization: localAuthorizer(api, () => ({ user_id: user })) };
    const [a, b] = await Promise.all([connected(server, app, auth), connected(server, app, auth)]);
    await subscribed(a, ch);
    const added = await waitHook(hooks, (e) => e.channel === ch && e.name === 'member_added', 4000, 'member_added');
    assert.equal(added.user_id, user);
    await subscribed(b, ch);
    a.disconnect();
    await sleep(300);
    const left = Date.now();
    b.disconnect();
    const removed = await waitHook(hooks, (e) => e.channel === ch && e.name === 'member_removed', 8000, 'member_removed');
    assert.equal(removed.user_id, user);
    const delay = removed.at - left;
    assert.ok(delay >= 2500 && delay < 6000, `member_removed after ${delay} ms`);
    await waitHook(hooks, (e) => e.channel === ch && e.name === 'channel_vacated', 3000, 'channel_vacated');
    const names = eventsFor(hooks, ch).map((e) => e.name);
    assert.equal(names.filter((n) => n === 'member_added').length, 1, names.join(','));
    assert.equal(names.filter((n) => n === 'member_removed').length, 1, names.join(','));
  });

  it('a user leaving and coming back within 3 s: no member_removed, no channel_vacated', async () => {
    const ch = uid('presence-blip-');
    const user = uid('ben');
    const auth = { channelAuthorization: localAuthorizer(api, () => ({ user_id: user })) };
    const first = await connected(server, app, auth);
    await subscribed(first, ch);
    await waitHook(hooks, (e) => e.channel === ch && e.name === 'member_added', 4000, 'member_added');
    first.disconnect();
    await sleep(1000);
    const back = await connected(server, app, auth);
    await subscribed(back, ch);
    await sleep(4000);                          // past the 3 s delay of the removal
    const names = eventsFor(hooks, ch).map((e) => e.name);
    assert.deepEqual(names.filter((n) => n === 'member_removed' || n === 'channel_vacated'), [], names.join(','));
    assert.equal(names.filter((n) => n === 'member_added').length, 1, `one member_added: ${names.join(',')}`);
    assert.equal(names.filter((n) => n === 'channel_occupied').length, 1, `one channel_occupied: ${names.join(',')}`);
  });

  it('client_event, with socket_id, and user_id on presence channels', async () => {
    const priv = uid('private-talk-');
    const pres = uid('presence-talk-');
    const raw = await RawClient.open(server, app.key);
    await raw.subscribe(priv, { auth: api.authorizeChannel(raw.socketId, priv).auth });
    await raw.subscribe(pres, api.authorizeChannel(raw.socketId, pres, { user_id: 'talker' }));
    raw.send({ event: 'client-say', channel: priv, data: { words: 'hi' } });
    raw.send({ event: 'client-say', channel: pres, data: { words: 'yo' } });
    const e1 = await waitHook(hooks, (e) => e.channel === priv && e.name === 'client_event', 4000, 'client_event');
    assert.equal(e1.event, 'client-say');
    assert.equal(typeof e1.data, 'string', 'data is a string, as Pusher sends it');
    assert.deepEqual(JSON.parse(e1.data), { words: 'hi' });
    assert.equal(e1.socket_id, raw.socketId);
    const e2 = await waitHook(hooks, (e) => e.channel === pres && e.name === 'client_event', 4000, 'presence client_event');
    assert.equal(e2.user_id, 'talker');
    assert.deepEqual(JSON.parse(e2.data), { words: 'yo' });
  });

  it('cache_miss when subscribing to an empty cache channel', async () => {
    const ch = uid('cache-hook-');
    const p = await connected(server, app);
    p.subscribe(ch);
    const miss = await waitHook(hooks, (e) => e.channel === ch && e.name === 'cache_miss', 4000, 'cache_miss');
    assert.equal(miss.name, 'cache_miss');
  });

  it('a receiver answering 500 gets the POST again; a dead URL does not block the others', async () => {
    const ch = uid('retry-');
    const p = await connected(server, flaky);
    await subscribed(p, ch);
    const ev = await until(() => flakyHooks.events().find((e) => e.channel === ch && e.name === 'channel_occupied'),
      20000, 'the retried channel_occupied');
    assert.ok(ev);
    assert.equal(flakyHooks.hooks[0].status, 500, 'the first POST was refused');
    assert.ok(flakyHooks.hooks.length >= 2, 'and retried');
    const retried = flakyHooks.hooks.find((h) => h.status === 200 && h.json?.events?.some((e) => e.channel === ch));
    assert.equal(apiFlaky.webhook({ headers: retried.headers, rawBody: retried.rawBody }).isValid(), true);
    // The other app's hooks never went to the flaky receiver.
    assert.deepEqual(flakyHooks.hooks.filter((h) => h.headers['x-pusher-key'] !== flaky.key), []);
    assert.equal(server.alive(), true);
  });
});
