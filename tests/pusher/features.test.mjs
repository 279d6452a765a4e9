// End-to-end encrypted channels (private-encrypted-) and cache channels (cache-,
// private-cache-, presence-cache-).
//
// pusher-js note: `pusher-js/with-encryption` is the web build (it needs `self`); in Node the
// default `pusher-js` build already carries tweetnacl and decrypts private-encrypted-
// channels, so the Node tests use it. browser.test.mjs loads the web build.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startAtrium, makeApp, sdk, connected, nextEvent, subscribed, record, uid, sleep,
  nothingWithin, localAuthorizer, RawClient, cleanup,
} from './helpers.mjs';

const app = makeApp('501');
const masterKey = crypto.randomBytes(32).toString('base64');
let server;
let api;

before(async () => {
  server = await startAtrium({ apps: [app] });
  api = sdk(server, app, { encryptionMasterKeyBase64: masterKey });
});
after(cleanup);

const authed = () => connected(server, app, { channelAuthorization: localAuthorizer(api) });

describe('encrypted channels', { concurrency: true }, () => {
  it('an SDK trigger on private-encrypted- is decrypted by pusher-js; the server relays only ciphertext', async () => {
    const name = uid('private-encrypted-vault-');
    const p = await authed();
    const ch = await subscribed(p, name);
    // A raw subscriber with a valid signature sees what the server sends: nonce + ciphertext.
    const raw = await RawClient.open(server, app.key);
    await raw.subscribe(name, { auth: api.authorizeChannel(raw.socketId, name).auth });
    const got = nextEvent(ch, 'secret');
    const mark = raw.mark();
    await api.trigger(name, 'secret', { code: 'swordfish', n: 3 });
    assert.deepEqual(await got, { code: 'swordfish', n: 3 });
    const frame = await raw.next((f) => f.event === 'secret', 3000, mark);
    assert.equal(typeof frame.data.nonce, 'string', frame.raw);
    assert.equal(typeof frame.data.ciphertext, 'string', frame.raw);
    assert.doesNotMatch(frame.raw, /swordfish/);
  });

  it('client events on an encrypted channel are refused', async () => {
    const name = uid('private-encrypted-chat-');
    const [a, b] = await Promise.all([RawClient.open(server, app.key), RawClient.open(server, app.key)]);
    await a.subscribe(name, { auth: api.authorizeChannel(a.socketId, name).auth });
    await b.subscribe(name, { auth: api.authorizeChannel(b.socketId, name).auth });
    const mark = b.mark();
    const err = a.request({ event: 'client-leak', channel: name, data: { nonce: 'AAAA', ciphertext: 'BBBB' } }, 'pusher:error');
    await nothingWithin(b.frames, 500, mark, (f) => f.event === 'client-leak');
    assert.match((await err).data.message, /encrypted/, (await err).raw);
    // pusher-js itself refuses to send them.
    const p = await authed();
    const ch = await subscribed(p, name);
    assert.throws(() => ch.trigger('client-leak', {}), /not currently supported for encrypted channels/);
    await a.ping();
  });

  it('a private-encrypted- subscription needs a valid signature', async () => {
    const name = uid('private-encrypted-locked-');
    const raw = await RawClient.open(server, app.key);
    const reply = await raw.request({ event: 'pusher:subscribe', data: { channel: name, auth: `${app.key}:${'0'.repeat(64)}` } },
      (f) => f.event === 'pusher:error' || (f.channel === name && /subscription_(succeeded|error)$/.test(f.event)));
    assert.equal(reply.event, 'pusher:subscription_error', reply.raw);
  });
});

describe('cache channels', { concurrency: true }, () => {
  for (const prefix of ['cache-', 'private-cache-', 'presence-cache-']) {
    it(`${prefix}: a late subscriber gets the last event; an empty one gets pusher:cache_miss`, async () => {
      const name = uid(`${prefix}ticker-`);
      const p1 = await authed();
      // Empty: cache_miss right after subscribing.
      const ch1 = p1.subscribe(name);
      const seen1 = record(ch1);
      await nextEvent(ch1, 'pusher:cache_miss', 4000);
      assert.equal(seen1.filter((e) => e.event === 'pusher:cache_miss').length, 1);

      await api.trigger(name, 'price', { v: 1 });
      await api.trigger(name, 'price', { v: 2 });
      const p2 = await authed();
      const ch2 = p2.subscribe(name);
      const seen2 = record(ch2);
      const last = await nextEvent(ch2, 'price', 4000);
      assert.deepEqual(last, { v: 2 }, 'the last event, not the first');
      await sleep(300);
      assert.equal(seen2.filter((e) => e.event === 'price').length, 1, 'only the last event');
      assert.equal(seen2.filter((e) => e.event === 'pusher:cache_miss').length, 0);
      const iSucc = seen2.findIndex((e) => e.event === 'pusher:subscription_succeeded');
      const iPrice = seen2.findIndex((e) => e.event === 'price');
      assert.ok(iSucc >= 0 && iSucc < iPrice, 'the cached event follows subscription_succeeded');
    });
  }

  it('a public channel without the cache- prefix keeps nothing', async () => {
    const name = uid('nocache-');
    await api.trigger(name, 'price', { v: 1 });
    const p = await authed();
    const ch = p.subscribe(name);
    const seen = record(ch);
    await nextEvent(ch, 'pusher:subscription_succeeded');
    await sleep(300);
    assert.deepEqual(seen.filter((e) => !/^pusher:subscription_(succeeded|count)$/.test(e.event)), []);
  });
});
