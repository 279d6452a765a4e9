// Shared by the Pusher compatibility tests: the real `atrium serve` with Pusher apps on a
// free 127.0.0.1 port, the real pusher-js (Node build) and `pusher` server SDK pointed at
// it, a tiny auth endpoint (what a Laravel app's /broadcasting/auth does), a webhook
// receiver, and a raw WebSocket client for frames no SDK would send. Every wait has a
// timeout; cleanup() (call it from after()) stops everything a test file started.
import { spawn } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import Pusher from 'pusher-js';          // the Node build; it includes tweetnacl (encrypted channels)
import PusherSDK from 'pusher';

export { Pusher, PusherSDK };

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..');
export const BIN = process.env.ATRIUM_BIN
  ? path.resolve(process.env.ATRIUM_BIN)
  : path.join(repo, 'build', 'atrium');

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let serial = 0;
// A channel/user name no other test in this process uses.
export const uid = (prefix = 'x') => `${prefix}${process.pid}-${++serial}`;

// An app for --pusher-app: {id, key, secret}.
export function makeApp(id = `${1000 + (++serial)}`) {
  return { id, key: `key${id}`, secret: `secret${id}-${process.pid}` };
}

const servers = new Set();
const closers = new Set();               // functions that release something (clients, http servers)
const tempDirs = new Set();              // removed once the servers stopped

export function onCleanup(fn) {
  closers.add(fn);
  return () => closers.delete(fn);
}

// Settings the server reads from ATRIUM_* must not leak in from the shell running the tests.
function serverEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('ATRIUM_') && k !== 'ATRIUM_LUA_PATH') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

// Starts `atrium serve --rooms DIR --host 127.0.0.1 --port 0 --pusher-app ID:KEY:SECRET ...`
// and resolves once it printed `atrium listening on HOST:PORT` (stdout or stderr).
// apps: [{id,key,secret}]; webhooks: [[appId, url]]; args: more flags; env: more variables.
export async function startAtrium({ apps = [], webhooks = [], args = [], env = {}, publicDir,
  rooms, timeoutMs = 10000 } = {}) {
  const roomsDir = rooms ?? fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-pusher-rooms-'));
  if (!rooms) tempDirs.add(roomsDir);
  const argv = ['serve', '--rooms', roomsDir, '--host', '127.0.0.1', '--port', '0'];
  if (publicDir) argv.push('--public', publicDir);
  for (const a of apps) argv.push('--pusher-app', `${a.id}:${a.key}:${a.secret}`);
  for (const [id, url] of webhooks) argv.push('--pusher-webhook', `${id}:${url}`);
  argv.push(...args);
  const child = spawn(BIN, argv, { cwd: here, env: serverEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal));
    child.on('error', () => resolve('spawn-error'));
  });
  const server = {
    child,
    exited,
    output: () => out,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop(timeout = 3000) {
      servers.delete(server);
      if (child.exitCode !== null || child.signalCode !== null || !child.pid) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  servers.add(server);
  const port = await new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`${why}\n--- command: ${BIN} ${argv.join(' ')}\n--- output:\n${out.slice(-4000)}`));
    };
    const timer = setTimeout(() => fail(`no "atrium listening on HOST:PORT" within ${timeoutMs} ms`), timeoutMs);
    const onData = (d) => {
      out = (out + d).slice(-200000);
      const m = /atrium listening on \S+:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => fail(e.code === 'ENOENT'
      ? `atrium binary not found at ${BIN} (build it, or set ATRIUM_BIN)` : `cannot start ${BIN}: ${e.message}`));
    child.on('exit', (code, signal) => fail(`server exited (${code ?? signal}) before listening`));
  }).catch(async (e) => { await server.stop(500); throw e; });
  server.port = port;
  server.origin = `http://127.0.0.1:${port}`;
  server.wsUrl = (key) => `ws://127.0.0.1:${port}/app/${key}?protocol=7&client=js&version=8.6.0&flash=false`;
  return server;
}

// The `pusher` server SDK (what a Laravel/Node back end uses) pointed at the server.
export function sdk(server, app, opts = {}) {
  return new PusherSDK({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1',
    port: server.port, useTLS: false, timeout: 5000, ...opts });
}

// pusher-js options for the server (spread more over them).
export function clientOptions(server, opts = {}) {
  return { wsHost: '127.0.0.1', wsPort: server.port, forceTLS: false, enabledTransports: ['ws'],
    cluster: 'mt1', disableStats: true, ...opts };
}

// A pusher-js client (Node build); disconnected by cleanup().
export function client(server, app, opts = {}, PusherClass = Pusher) {
  const p = new PusherClass(app.key, clientOptions(server, opts));
  onCleanup(() => p.disconnect());
  return p;
}

// A connected pusher-js client.
export async function connected(server, app, opts = {}, PusherClass = Pusher) {
  const p = client(server, app, opts, PusherClass);
  await until(() => p.connection.state === 'connected', 5000, 'pusher-js to connect');
  return p;
}

// Polls cond() (sync or async) every 20 ms until it is truthy; rejects after ms.
export async function until(cond, ms = 5000, what = 'a condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

// Resolves with the data of the next `event` on a pusher-js channel (or connection, user).
export function nextEvent(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const handler = (data, meta) => { clearTimeout(timer); emitter.unbind(event, handler); resolve(data ?? meta); };
    const timer = setTimeout(() => {
      emitter.unbind(event, handler);
      reject(new Error(`no "${event}" within ${ms} ms`));
    }, ms);
    emitter.bind(event, handler);
  });
}

// Subscribes and resolves with the channel once pusher:subscription_succeeded arrived
// (rejects on pusher:subscription_error).
export function subscribed(pusher, name, ms = 5000) {
  const channel = pusher.subscribe(name);
  if (channel.subscribed) return Promise.resolve(channel);
  return new Promise((resolve, reject) => {
    const ok = () => { done(); resolve(channel); };
    const bad = (e) => { done(); reject(new Error(`subscription to ${name} failed: ${JSON.stringify(e)}`)); };
    const timer = setTimeout(() => { done(); reject(new Error(`no subscription_succeeded for ${name} within ${ms} ms`)); }, ms);
    function done() {
      clearTimeout(timer);
      channel.unbind('pusher:subscription_succeeded', ok);
      channel.unbind('pusher:subscription_error', bad);
    }
    channel.bind('pusher:subscription_succeeded', ok);
    channel.bind('pusher:subscription_error', bad);
  });
}

// Collects every event a pusher-js channel emits: [{event, data}].
export function record(channel) {
  const seen = [];
  channel.bind_global((event, data) => seen.push({ event, data }));
  return seen;
}

function readBody(req, limit = 4 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => { n += c.length; if (n <= limit) chunks.push(c); });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// An HTTP server on 127.0.0.1 answering with handler(req, body) -> {status, json|text,
// headers}; closed by cleanup(). Resolves {url, port, requests, close}.
export async function httpServer(handler) {
  const requests = [];
  const srv = http.createServer(async (req, res) => {
    const body = await readBody(req);
    const entry = { method: req.method, url: req.url, headers: req.headers, body, at: Date.now() };
    requests.push(entry);
    let answer;
    try {
      answer = (await handler(req, body, entry)) ?? { status: 200, json: {} };
    } catch (e) {
      answer = { status: 500, text: String(e?.message ?? e) };
    }
    const text = answer.json !== undefined ? JSON.stringify(answer.json) : (answer.text ?? '');
    res.writeHead(answer.status ?? 200, {
      'content-type': answer.json !== undefined ? 'application/json' : 'text/plain',
      'access-control-allow-origin': '*',
      'access-control-allow-headers': '*',
      ...(answer.headers ?? {}),
    });
    res.end(text);
  });
  srv.keepAliveTimeout = 1000;
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = srv.address().port;
  const close = () => new Promise((resolve) => {
    srv.closeAllConnections?.();
    srv.close(() => resolve());
  });
  onCleanup(close);
  return { url: `http://127.0.0.1:${port}`, port, requests, close };
}

// The auth endpoint a back end offers, signing with the SDK: POST /auth (channel
// authorization, form socket_id & channel_name) and POST /user-auth (user
// authentication, form socket_id). presence(socketId, channel, form) gives
// channel_data; user(socketId, form) gives user data; deny(channel) → 403.
export async function authServer(signer, { presence, user, deny } = {}) {
  const calls = [];
  const srv = await httpServer((req, body) => {
    const form = Object.fromEntries(new URLSearchParams(body));
    calls.push({ path: req.url, form });
    if (req.method === 'OPTIONS') return { status: 204, text: '' };
    if (req.url.startsWith('/user-auth')) {
      const data = user ? user(form.socket_id, form) : { id: `user-${form.socket_id}` };
      return { status: 200, json: signer.authenticateUser(form.socket_id, data) };
    }
    const channel = form.channel_name;
    if (deny && deny(channel)) return { status: 403, text: 'Forbidden' };
    const data = channel.startsWith('presence-')
      ? (presence ? presence(form.socket_id, channel, form) : { user_id: `u-${form.socket_id}`, user_info: { name: form.socket_id } })
      : undefined;
    return { status: 200, json: signer.authorizeChannel(form.socket_id, channel, data) };
  });
  return { ...srv, calls, endpoint: `${srv.url}/auth`, userEndpoint: `${srv.url}/user-auth` };
}

// pusher-js channelAuthorization that signs in-process (no HTTP): presenceData(socketId,
// channel) gives channel_data for presence channels.
export function localAuthorizer(signer, presenceData) {
  return {
    customHandler: ({ socketId, channelName }, callback) => {
      try {
        const data = channelName.startsWith('presence-')
          ? (presenceData ? presenceData(socketId, channelName) : { user_id: `u-${socketId}` })
          : undefined;
        callback(null, signer.authorizeChannel(socketId, channelName, data));
      } catch (e) {
        callback(e, null);
      }
    },
  };
}

// A webhook receiver: every POST lands in `hooks` ({headers, rawBody, json, at, status});
// statuses: an array of HTTP statuses answered in turn (then 200).
export async function webhookReceiver({ statuses = [] } = {}) {
  const hooks = [];
  const queue = [...statuses];
  const srv = await httpServer((req, body) => {
    const status = queue.length ? queue.shift() : 200;
    let json;
    try { json = JSON.parse(body); } catch { json = undefined; }
    hooks.push({ headers: req.headers, rawBody: body, json, at: Date.now(), status });
    return { status, json: {} };
  });
  // The events of accepted (2xx) POSTs, flattened, each with `at` (arrival).
  const events = () => hooks.filter((h) => h.status < 300 && h.json)
    .flatMap((h) => (h.json.events ?? []).map((e) => ({ ...e, at: h.at })));
  return { ...srv, hooks, events };
}

// One raw HTTP request: resolves {status, text, json, headers}.
export function rawHttp(url, { method = 'GET', body, headers = {}, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
    const h = { connection: 'close', ...headers };
    if (payload) h['content-length'] = String(payload.length);
    const req = http.request(url, { method, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      // A server that answers 413 early may reset the connection while we still send.
      if (e.code === 'EPIPE' || e.code === 'ECONNRESET') resolve({ status: 0, error: e.code, text: '' });
      else reject(e);
    });
    req.end(payload);
  });
}

// A Pusher protocol client on a bare WebSocket: frames the SDKs never send. Every frame
// lands in `frames` ({event, channel, data (parsed when it is JSON text), raw}).
export class RawClient {
  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.waiters = [];
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const w of this.waiters.splice(0)) { clearTimeout(w.timer); w.reject(new Error(`closed (${code} ${reason}) while waiting for ${w.what}; frames:\n${this.tail()}`)); }
        resolve(this.closeInfo);
      });
    });
    ws.on('error', () => {});
    ws.on('message', (data) => {
      const raw = data.toString('utf8');
      let msg;
      try { msg = JSON.parse(raw); } catch { msg = { event: '(not json)' }; }
      if (typeof msg.data === 'string') {
        try { msg.data = JSON.parse(msg.data); } catch { /* a plain string */ }
      }
      msg.raw = raw;
      this.frames.push(msg);
      const i = this.waiters.findIndex((w) => w.match(msg));
      if (i >= 0) {
        const [w] = this.waiters.splice(i, 1);
        clearTimeout(w.timer);
        w.resolve(msg);
      }
    });
    onCleanup(() => ws.terminate());
  }

  static async open(server, key, { query = '?protocol=7&client=js&version=8.6.0&flash=false', timeoutMs = 5000, established = true } = {}) {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/app/${key}${query}`, { handshakeTimeout: timeoutMs, maxPayload: 8 << 20 });
    const c = new RawClient(ws);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { ws.terminate(); reject(new Error(`no upgrade within ${timeoutMs} ms`)); }, timeoutMs);
      ws.once('open', () => { clearTimeout(timer); resolve(); });
      ws.once('unexpected-response', (req, res) => {
        clearTimeout(timer);
        res.resume();
        reject(new Error(`upgrade refused with HTTP ${res.statusCode}`));
      });
      ws.once('error', (e) => { clearTimeout(timer); reject(e); });
    });
    if (established) {
      const m = await c.next((f) => f.event === 'pusher:connection_established', timeoutMs);
      c.socketId = m.data.socket_id;
    }
    return c;
  }

  tail(n = 8) {
    return this.frames.slice(-n).map((f) => f.raw.slice(0, 300)).join('\n') || '(none)';
  }

  // The first frame (from `since`, default 0: already received ones count) matching pred.
  next(pred, ms = 4000, since = 0) {
    const match = typeof pred === 'string' ? (f) => f.event === pred : pred;
    const found = this.frames.slice(since).find(match);
    if (found) return Promise.resolve(found);
    if (this.closeInfo) return Promise.reject(new Error(`closed (${this.closeInfo.code}) before a frame matching ${pred}; frames:\n${this.tail()}`));
    return new Promise((resolve, reject) => {
      const w = { match: (f) => this.frames.indexOf(f) >= since && match(f), resolve, reject, what: String(pred).slice(0, 100) };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no frame matching ${w.what} within ${ms} ms; frames:\n${this.tail()}`));
      }, ms);
      this.waiters.push(w);
    });
  }

  mark() { return this.frames.length; }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  // Sends and waits for the next frame matching pred that arrives after the send.
  request(obj, pred, ms = 4000) {
    const since = this.mark();
    this.send(obj);
    return this.next(pred, ms, since);
  }

  async subscribe(channel, extra = {}, ms = 4000) {
    const reply = await this.request({ event: 'pusher:subscribe', data: { channel, ...extra } },
      (f) => f.channel === channel && /subscription_(succeeded|error)/.test(f.event) || f.event === 'pusher:error', ms);
    assert.equal(reply.event, 'pusher_internal:subscription_succeeded', `subscribe ${channel}: ${reply.raw}`);
    return reply;
  }

  // Pusher's ping/pong: the connection still answers.
  async ping(ms = 3000) {
    return this.request({ event: 'pusher:ping', data: {} }, 'pusher:pong', ms);
  }

  close() {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    this.ws.close(1000);
    const timer = setTimeout(() => this.ws.terminate(), 2000);
    return this.closed.finally(() => clearTimeout(timer));
  }

  async closedWithin(ms = 4000) {
    let timer;
    try {
      return await Promise.race([this.closed, new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`still open after ${ms} ms; frames:\n${this.tail()}`)), ms);
      })]);
    } finally { clearTimeout(timer); }
  }
}

// Asserts that nothing was recorded in list (from index since) within ms.
export async function nothingWithin(list, ms, since = list.length, pred = () => true) {
  await sleep(ms);
  const extra = list.slice(since).filter(pred);
  assert.deepEqual(extra, [], `unexpected: ${JSON.stringify(extra).slice(0, 500)}`);
}

export async function cleanup() {
  for (const fn of [...closers].reverse()) {
    try { await fn(); } catch { /* already gone */ }
  }
  closers.clear();
  await Promise.all([...servers].map((s) => s.stop(2000)));
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
  // pusher-js's Node WebSocket (faye) arms a 30 s close timer when it closes a socket the
  // server already closed (4001, terminate_connections) and never clears it; do not let
  // that hold the file open. Unref'd: a file with nothing left pending exits at once.
  setTimeout(() => process.exit(process.exitCode ?? 0), 1500).unref();
}

process.on('exit', () => {
  for (const s of servers) {
    try { s.child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});
