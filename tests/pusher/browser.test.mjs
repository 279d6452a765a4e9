// pusher-js's browser bundle in Debian's chromium (playwright-core, never a downloaded
// browser): a page served by `atrium serve --public DIR` connects to /app/KEY on the same
// origin, joins a presence channel (auth through the test's endpoint, transport 'ajax'),
// gets an SDK trigger and a client event from a Node pusher-js peer, and whispers back.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  here, startAtrium, makeApp, sdk, connected, until, subscribed, nextEvent, uid, authServer,
  localAuthorizer, cleanup,
} from './helpers.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const app = makeApp('1001');
let server;
let api;
let auth;
let browser;
let pub;

const page = (cfg) => `<!doctype html>
<html><head><meta charset="utf-8"><title>pusher-js on atrium</title><link rel="icon" href="data:,">
<script src="pusher.min.js"></script></head>
<body><pre id="log"></pre>
<script>
  const cfg = ${JSON.stringify(cfg)};
  window.events = [];
  const note = (e) => { window.events.push(e); document.getElementById('log').textContent += JSON.stringify(e) + '\\n'; };
  const pusher = new Pusher(cfg.key, {
    wsHost: location.hostname, wsPort: Number(location.port), forceTLS: false,
    enabledTransports: ['ws'], cluster: 'mt1', disableStats: true,
    channelAuthorization: { endpoint: cfg.authEndpoint, transport: 'ajax' },
  });
  window.pusher = pusher;
  pusher.connection.bind('connected', () => note({ kind: 'connected', socketId: pusher.connection.socket_id }));
  pusher.connection.bind('error', (e) => note({ kind: 'error', error: JSON.stringify(e) }));
  const channel = pusher.subscribe(cfg.channel);
  window.channel = channel;
  channel.bind('pusher:subscription_succeeded', (m) => note({ kind: 'subscribed', count: m.count, me: m.me }));
  channel.bind('pusher:subscription_error', (e) => note({ kind: 'subscription_error', e }));
  channel.bind('pusher:member_added', (m) => note({ kind: 'member_added', member: m }));
  channel.bind('announcement', (d) => note({ kind: 'announcement', data: d }));
  channel.bind('client-wave', (d, meta) => note({ kind: 'client-wave', data: d, user_id: meta && meta.user_id }));
</script></body></html>`;

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-browser.sh`);
  pub = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-pusher-page-'));
  fs.copyFileSync(path.join(here, 'node_modules', 'pusher-js', 'dist', 'web', 'pusher.min.js'), path.join(pub, 'pusher.min.js'));
  server = await startAtrium({ apps: [app], publicDir: pub });
  api = sdk(server, app);
  auth = await authServer(api, { presence: (socketId) => ({ user_id: 'browser-user', user_info: { name: 'Page', socket: socketId } }) });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  await cleanup();
  if (pub) fs.rmSync(pub, { recursive: true, force: true });
});

describe('pusher-js in chromium', () => {
  it('joins a presence channel, gets an SDK trigger and a client event, whispers back', async () => {
    const channel = uid('presence-browser-');
    fs.writeFileSync(path.join(pub, 'pusher-page.html'), page({ key: app.key, channel, authEndpoint: auth.endpoint }));
    const context = await browser.newContext();
    const errors = [];
    const tab = await context.newPage();
    tab.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    tab.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    await tab.goto(`${server.origin}/pusher-page.html`, { timeout: 10000 });

    const events = () => tab.evaluate(() => window.events);
    const find = async (kind) => (await events()).find((e) => e.kind === kind);
    const sub = await until(() => find('subscribed'), 8000, `the page to subscribe (events: ${JSON.stringify(errors)})`);
    assert.equal(sub.count, 1);
    assert.equal(sub.me.id, 'browser-user');
    const pageSocket = (await find('connected')).socketId;
    assert.match(pageSocket, /^\d+\.\d+$/);

    // A Node pusher-js peer joins as another user.
    const peer = await connected(server, app, { channelAuthorization: localAuthorizer(api, () => ({ user_id: 'node-user', user_info: { name: 'Node' } })) });
    const peerChannel = await subscribed(peer, channel);
    assert.equal(peerChannel.members.count, 2);
    const added = await until(() => find('member_added'), 4000, 'member_added in the page');
    assert.deepEqual(added.member, { id: 'node-user', info: { name: 'Node' } });

    // The back end broadcasts.
    await api.trigger(channel, 'announcement', { text: 'from the SDK' });
    const ann = await until(() => find('announcement'), 4000, 'the SDK trigger in the page');
    assert.deepEqual(ann.data, { text: 'from the SDK' });

    // The Node peer sends a client event; the page gets it with the sender's user_id.
    peerChannel.trigger('client-wave', { from: 'node' });
    const wave = await until(() => find('client-wave'), 4000, 'the client event in the page');
    assert.deepEqual(wave.data, { from: 'node' });
    assert.equal(wave.user_id, 'node-user');

    // The page whispers back.
    const back = nextEvent(peerChannel, 'client-reply', 4000);
    await tab.evaluate(() => window.channel.trigger('client-reply', { from: 'page' }));
    assert.deepEqual(await back, { from: 'page' });

    assert.deepEqual(errors.filter((e) => !/favicon/.test(e)), []);
    await context.close();
  });
});
