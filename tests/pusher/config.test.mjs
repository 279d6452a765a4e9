// Setting Pusher apps up: the JSON config file's "pusher-app" / "pusher-limit" lists,
// --pusher-limit, bad settings refused at start, and the max-connections limit (4100).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  BIN, startAtrium, makeApp, sdk, connected, subscribed, uid, until, localAuthorizer, RawClient,
  webhookReceiver, rawHttp, cleanup,
} from './helpers.mjs';

after(cleanup);

// Runs `atrium serve ...` expecting it to refuse to start: resolves {code, output}.
function refusesToStart(args, ms = 5000) {
  const rooms = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-pusher-rooms-'));
  const child = spawn(BIN, ['serve', '--rooms', rooms, '--host', '127.0.0.1', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`still running after ${ms} ms: ${out}`)); }, ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      fs.rmSync(rooms, { recursive: true, force: true });
      resolve({ code, output: out });
    });
  });
}

describe('configuration', { concurrency: true }, () => {
  it('apps and limits from the JSON config file; a 3rd presence member past presence-members=2', async () => {
    const app = makeApp('1101');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-pusher-config-'));
    const file = path.join(dir, 'atrium.json');
    const receiver = await webhookReceiver();
    fs.writeFileSync(file, JSON.stringify({
      'pusher-app': [`${app.id}:${app.key}:${app.secret}`],
      'pusher-limit': [`${app.id}:presence-members=2`],
      'pusher-webhook': [`${app.id}:${receiver.url}/from-file`],
    }));
    try {
      const server = await startAtrium({ args: ['--config', file] });
      const api = sdk(server, app);
      const name = uid('presence-small-');
      const [a, b, c] = await Promise.all([1, 2, 3].map(() => RawClient.open(server, app.key)));
      await a.subscribe(name, api.authorizeChannel(a.socketId, name, { user_id: 'a' }));
      await b.subscribe(name, api.authorizeChannel(b.socketId, name, { user_id: 'b' }));
      const reply = await c.request({ event: 'pusher:subscribe', data: { channel: name, ...api.authorizeChannel(c.socketId, name, { user_id: 'c' }) } },
        (f) => f.event === 'pusher:error' || (f.channel === name && /subscription_(succeeded|error)$/.test(f.event)));
      assert.equal(reply.event, 'pusher:subscription_error', reply.raw);
      await until(() => receiver.events().find((e) => e.channel === name && e.name === 'member_added'), 4000, 'member_added webhook');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('apps, limits and webhooks from the environment (ATRIUM_PUSHER_APPS, _LIMITS, _WEBHOOKS)', async () => {
    const app = makeApp('1107');
    const receiver = await webhookReceiver();
    const server = await startAtrium({ env: {
      ATRIUM_PUSHER_APPS: `${app.id}:${app.key}:${app.secret}`,
      ATRIUM_PUSHER_LIMITS: `${app.id}:batch-events=1`,
      ATRIUM_PUSHER_WEBHOOKS: `${app.id}:${receiver.url}/hook`,
    } });
    const api = sdk(server, app);
    const ch = uid('env-');
    await assert.rejects(api.triggerBatch([1, 2].map((i) => ({ channel: ch, name: 'e', data: { i } }))), (e) => e.status === 400);
    const p = await connected(server, app);
    await subscribed(p, ch);
    await until(() => receiver.events().find((e) => e.channel === ch && e.name === 'channel_occupied'), 4000, 'channel_occupied');
  });

  it('--pusher-limit max-connections: past it, pusher:error 4100', async () => {
    const app = makeApp('1102');
    const server = await startAtrium({ apps: [app], args: ['--pusher-limit', `${app.id}:max-connections=2`] });
    await Promise.all([RawClient.open(server, app.key), RawClient.open(server, app.key)]);
    const third = await RawClient.open(server, app.key, { established: false });
    const err = await third.next((f) => f.event === 'pusher:error' || f.event === 'pusher:connection_established', 3000);
    assert.equal(err.event, 'pusher:error', err.raw);
    assert.equal(err.data.code, 4100, err.raw);
    const closed = await third.closedWithin(3000);
    assert.equal(closed.code, 4100, `close ${closed.code} ${closed.reason}`);
  });

  it('--pusher-limit user-auth-timeout-ms: a connection that does not sign in in time gets 4009', async () => {
    const app = makeApp('1105');
    const server = await startAtrium({ apps: [app], args: ['--pusher-limit', `${app.id}:user-auth-timeout-ms=300`] });
    const raw = await RawClient.open(server, app.key);
    const started = Date.now();
    const err = await raw.next((f) => f.event === 'pusher:error', 3000);
    assert.equal(err.data.code, 4009, err.raw);
    assert.equal((await raw.closedWithin(3000)).code, 4009);
    assert.ok(Date.now() - started >= 250, `closed after ${Date.now() - started} ms`);
  });

  it('--pusher-limit batch-events and event-bytes', async () => {
    const app = makeApp('1103');
    const server = await startAtrium({ apps: [app], args: ['--pusher-limit', `${app.id}:batch-events=2`, '--pusher-limit', `${app.id}:event-bytes=1000`] });
    const api = sdk(server, app);
    const ch = uid('lim-');
    await assert.rejects(api.triggerBatch([1, 2, 3].map((i) => ({ channel: ch, name: 'e', data: { i } }))), (e) => e.status === 400);
    assert.equal((await api.triggerBatch([1, 2].map((i) => ({ channel: ch, name: 'e', data: { i } })))).status, 200);
    await assert.rejects(api.trigger(ch, 'e', 'x'.repeat(2000)), (e) => e.status === 413);
    assert.equal((await api.trigger(ch, 'e', 'x'.repeat(500))).status, 200);
  });

  it('a presence channel with a pusher-js client on a --pusher-app given twice over (two apps)', async () => {
    const a1 = makeApp('1104');
    const a2 = makeApp('1105');
    const server = await startAtrium({ apps: [a1, a2] });
    const api2 = sdk(server, a2);
    const p = await connected(server, a2, { channelAuthorization: localAuthorizer(api2, () => ({ user_id: 'z' })) });
    const ch = await subscribed(p, uid('presence-two-'));
    assert.equal(ch.members.count, 1);
  });

  it('a server shutting down tells pusher clients to reconnect (4200)', async () => {
    const app = makeApp('1106');
    const server = await startAtrium({ apps: [app] });
    const raw = await RawClient.open(server, app.key);
    const stopped = server.stop();
    const closed = await raw.closedWithin(5000);
    await stopped;
    const err = raw.frames.find((f) => f.event === 'pusher:error');
    assert.ok(closed.code === 4200 || err?.data?.code === 4200,
      `close ${closed.code} "${closed.reason}", error frame ${err?.raw ?? '(none)'}`);
  });

  it('without --pusher-app, /app/KEY and /apps/ID are not served (404)', async () => {
    const server = await startAtrium({});
    await assert.rejects(RawClient.open(server, 'anykey'), /HTTP 404/);
    assert.equal((await rawHttp(`${server.origin}/apps/1/channels`)).status, 404);
  });

  it('bad settings are refused at start with a message', async () => {
    const bad = [
      [['--pusher-app', 'only-two:parts']],
      [['--pusher-app', '1:k:s', '--pusher-app', '1:k2:s2'], /id/],
      [['--pusher-app', '1:k:s', '--pusher-app', '2:k:s2'], /key/],
      [['--pusher-webhook', '1:http://127.0.0.1:9/x']],
      [['--pusher-app', '1:k:s', '--pusher-webhook', '2:http://127.0.0.1:9/x']],
      [['--pusher-app', '1:k:s', '--pusher-limit', '1:no-such-limit=3']],
      [['--pusher-app', '1:k:s', '--pusher-limit', '1:presence-members=lots']],
      [['--pusher-app', '1:k:s', '--pusher-limit', '1:subscription-count=2'], /0 \(off\) or 1/],
    ];
    for (const [args, re] of bad) {
      const { code, output } = await refusesToStart(args);
      assert.notEqual(code, 0, `${args.join(' ')} should fail`);
      assert.match(output, /pusher/i, `${args.join(' ')}: ${output}`);
      if (re) assert.match(output, re, `${args.join(' ')}: ${output}`);
    }
  });
});
