// Helpers for the end-to-end suite: start the real `atrium serve`, talk to it over
// WebSockets (JSON Lines, docs/protocol.md) and HTTP (docs/rooms.md "Reloading, and
// server-side calls over HTTP"), replay patches. Every wait has a timeout so no test can
// hang; cleanup() kills whatever a test file started.
import { spawn } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import WebSocket from 'ws';
import jsonpatch from 'fast-json-patch';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..');
export const testRooms = path.join(here, 'rooms');
export const exampleRooms = path.join(repo, 'rooms');
// ATRIUM_BIN, else build/atrium (what scripts/setup.sh builds).
export const BIN = process.env.ATRIUM_BIN
  ? path.resolve(process.env.ATRIUM_BIN)
  : path.join(repo, 'build', 'atrium');

const LISTENING = /atrium listening on (\S+):(\d+)\s*$/m;
const OUTPUT_CAP = 4 << 20;                       // bytes of server output kept per stream

const servers = new Set();
const clients = new Set();

let uidCounter = 0;
// A room instance name no other test in this process uses.
export function uid(prefix = 't') {
  uidCounter += 1;
  return `${prefix}${process.pid}-${uidCounter}`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Settings the server reads from ATRIUM_* variables must not leak in from the shell that
// runs the tests; ATRIUM_BIN is ours and ATRIUM_LUA_PATH says where the engine's Lua is.
function serverEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('ATRIUM_') && k !== 'ATRIUM_LUA_PATH') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

function appendCapped(buf, chunk) {
  const next = buf + chunk;
  return next.length > OUTPUT_CAP ? next.slice(next.length - OUTPUT_CAP) : next;
}

// Starts `atrium serve --rooms DIR --port 0 [...args]` and resolves once it printed
// `atrium listening on HOST:PORT`. rooms defaults to tests/e2e/rooms (passed as the
// relative path `rooms`, the server running in tests/e2e, so errors read rooms/x.lua).
export async function startServer({ rooms, args = [], env = {}, timeoutMs = 10000 } = {}) {
  const roomsArg = rooms ?? 'rooms';
  const child = spawn(BIN, ['serve', '--rooms', roomsArg, '--port', '0', ...args], {
    cwd: here,
    env: serverEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { stderr = appendCapped(stderr, d); });

  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal));
    child.on('error', () => resolve('spawn-error'));
  });

  const server = {
    child,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => stdout + stderr,
    stop: (timeout = 5000) => stopServer(server, timeout),
  };
  servers.add(server);

  const listening = await new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`${why}\n--- command: ${BIN} serve --rooms ${roomsArg} --port 0 ${args.join(' ')}` +
        `\n--- server stdout:\n${stdout}\n--- server stderr:\n${stderr}`));
    };
    const timer = setTimeout(() => fail(`no "atrium listening on HOST:PORT" line within ${timeoutMs} ms`),
      timeoutMs);
    child.stdout.on('data', (d) => {
      stdout = appendCapped(stdout, d);
      const m = LISTENING.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({ host: m[1], port: Number(m[2]) });
      }
    });
    child.on('error', (e) => fail(e.code === 'ENOENT'
      ? `atrium binary not found at ${BIN} (build it, or set ATRIUM_BIN)`
      : `could not start ${BIN}: ${e.message}`));
    child.on('exit', (code, signal) => fail(`server exited (${code ?? signal}) before listening`));
  }).catch(async (e) => {
    await stopServer(server, 1000);
    throw e;
  });

  const connectHost = listening.host === '0.0.0.0' ? '127.0.0.1'
    : listening.host === '::' ? '::1' : listening.host.replace(/^\[|\]$/g, '');
  const hostPart = connectHost.includes(':') ? `[${connectHost}]` : connectHost;
  server.host = listening.host;
  server.port = listening.port;
  server.origin = `http://${hostPart}:${listening.port}`;
  server.url = `ws://${hostPart}:${listening.port}/ws`;
  server.http = (method, p, body, headers) => httpRequest(server, method, p, body, headers);
  server.connect = (opts) => connect(server.url, opts);
  return server;
}

async function stopServer(server, timeout) {
  const { child } = server;
  if (child.exitCode === null && child.signalCode === null && child.pid) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    const code = await server.exited;
    clearTimeout(timer);
    servers.delete(server);
    return code;
  }
  servers.delete(server);
  return server.exited;
}

// One HTTP request with its own connection. body: an object (sent as JSON), a string or
// Buffer (sent as is), or undefined. Resolves {status, headers, text, json}.
export function httpRequest(server, method, p, body, headers = {}, timeoutMs = 5000) {
  let payload;
  const h = { connection: 'close', ...headers };
  if (body !== undefined) {
    payload = Buffer.isBuffer(body) ? body
      : typeof body === 'string' ? Buffer.from(body) : Buffer.from(JSON.stringify(body));
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) {
      h['content-type'] = 'application/json';
    }
    h['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.origin}${p}`, { method, headers: h, agent: false }, (res) => {
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
    const timer = setTimeout(() => {
      req.destroy(new Error(`HTTP ${method} ${p}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end(payload);
  });
}

function describePred(pred) {
  if (typeof pred === 'function') return pred.name || pred.toString().slice(0, 120);
  return JSON.stringify(pred);
}

function matcher(pred) {
  if (typeof pred === 'function') return pred;
  return (msg) => Object.entries(pred).every(([k, v]) => {
    if (v !== null && typeof v === 'object') {
      try { assert.deepStrictEqual(msg[k], v); return true; } catch { return false; }
    }
    return msg[k] === v;
  });
}

// A WebSocket client that speaks atrium.v1. Every JSON line the server sends lands in
// `log` (all, in arrival order) and in `inbox` (until a next() takes it). States of rooms
// joined by this client are replayed from patches in `views` (see view()).
export class Client {
  constructor(ws) {
    this.ws = ws;
    this.log = [];
    this.inbox = [];
    this.raw = [];
    this.views = new Map();
    this.badLines = [];
    this.errors = [];
    this.nextRef = 1000000;                       // far from the small refs tests send by hand
    this.sentOps = new Map();
    this.waiters = [];
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        clients.delete(this);
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new Error(`connection closed (${code} ${reason}) while waiting for ` +
            `${w.what}; last frames:\n${this.tail()}`));
        }
        resolve(this.closeInfo);
      });
    });
    ws.on('error', (e) => this.errors.push(e));
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    clients.add(this);
  }

  onMessage(data, isBinary) {
    const text = Buffer.isBuffer(data) ? data.toString('utf8')
      : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
    this.raw.push({ text, isBinary });
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        this.badLines.push(line);
        continue;
      }
      Object.defineProperty(msg, '$line', { value: line, enumerable: false });
      this.log.push(msg);
      this.track(msg);
      this.deliver(msg);
      for (const w of this.waiters.filter((x) => x.poll)) w.poll();
    }
  }

  // Replays the state of each room this client holds: a join/sync reply, `joined` or
  // `state` frame sets it; each `patch` must carry the next seq and apply cleanly.
  track(msg) {
    const setView = (room, seq, state) => {
      const v = this.views.get(room) ?? { patches: 0, resets: 0, gaps: [], failures: [], syncs: [] };
      v.seq = seq;
      v.state = structuredClone(state);
      v.resets += 1;
      this.views.set(room, v);
    };
    if (msg.op === 'reply' && msg.ok && msg.result && typeof msg.result === 'object' &&
        typeof msg.result.room === 'string' && 'seq' in msg.result && 'state' in msg.result) {
      const { room, seq, state } = msg.result;
      const v = this.views.get(room);
      if (this.sentOps.get(msg.ref) === 'sync' && v) {
        // docs/protocol.md "Server to client": pending changes are flushed as a patch
        // before the sync result, so the replayed view must already be at the result's seq
        // and equal its state.
        v.syncs.push({ seq, viewSeq: v.seq, equal: isDeepStrictEqual(v.state, state) });
      }
      setView(room, seq, state);
    } else if (msg.op === 'joined' || msg.op === 'state') {
      setView(msg.room, msg.seq, msg.state);
    } else if (msg.op === 'patch') {
      const v = this.views.get(msg.room);
      if (!v) return;
      if (msg.seq <= v.seq) return;                // already inside the state we hold
      if (msg.seq !== v.seq + 1) {
        v.gaps.push({ had: v.seq, got: msg.seq });
        return;
      }
      try {
        v.state = jsonpatch.applyPatch(v.state, msg.ops, true, true).newDocument;
        v.seq = msg.seq;
        v.patches += 1;
      } catch (e) {
        v.failures.push({ seq: msg.seq, ops: msg.ops, error: e.message });
      }
    } else if (msg.op === 'left') {
      this.views.delete(msg.room);
    }
  }

  deliver(msg) {
    const i = this.waiters.findIndex((w) => w.match(msg));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      clearTimeout(w.timer);
      w.resolve(msg);
      return;
    }
    this.inbox.push(msg);
  }

  tail(n = 8) {
    return this.log.slice(-n).map((m) => m.$line.slice(0, 300)).join('\n') || '(none)';
  }

  // The next server line matching pred (a function, or an object whose fields must equal),
  // including lines already received and not yet taken.
  next(pred = () => true, timeoutMs = 4000) {
    const match = matcher(pred);
    const i = this.inbox.findIndex(match);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    const what = describePred(pred);
    if (this.closeInfo) {
      return Promise.reject(new Error(`connection already closed (${this.closeInfo.code}) ` +
        `before ${what}; last frames:\n${this.tail()}`));
    }
    return new Promise((resolve, reject) => {
      const w = { match, resolve, reject, what };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no frame matching ${what} within ${timeoutMs} ms; last frames:\n${this.tail()}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  // Waits until cond() holds, re-checking after every frame (and every 20 ms).
  until(cond, timeoutMs = 4000, what = cond.toString().slice(0, 120)) {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { match: () => false, what, poll: null };
      const done = (err) => {
        clearTimeout(w.timer);
        clearInterval(w.interval);
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        if (err) reject(err); else resolve();
      };
      w.poll = () => { try { if (cond()) done(); } catch (e) { done(e); } };
      w.resolve = () => {};
      w.reject = (e) => done(e);
      w.timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ` +
        `last frames:\n${this.tail()}`)), timeoutMs);
      w.interval = setInterval(w.poll, 20);
      this.waiters.push(w);
    });
  }

  // The position in log now: pass it to nothing() to cover frames from this point on.
  mark() {
    return this.log.length;
  }

  // Asserts that no frame matching pred is in log from index since (default: now) and none
  // arrives within ms. Frames a request causes for its sender come before its reply, so
  // take the mark before sending when the frame to rule out would be caused by a request.
  async nothing(pred, ms = 300, since = this.log.length) {
    const match = matcher(pred);
    await sleep(ms);
    const found = this.log.slice(since).find(match);
    assert.equal(found, undefined, `unexpected frame ${found && found.$line}`);
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  sendRaw(data, opts = {}) {
    return new Promise((resolve, reject) => this.ws.send(data, opts, (e) => (e ? reject(e) : resolve())));
  }

  // Sends obj with a fresh ref and resolves with the matching reply (ok or not).
  request(obj, timeoutMs = 4000) {
    const ref = this.nextRef++;
    this.sentOps.set(ref, obj.op);
    const reply = this.next((m) => m.op === 'reply' && m.ref === ref, timeoutMs);
    this.send({ ...obj, ref });
    return reply;
  }

  // As request(), but the reply must be ok; resolves with its result.
  async ok(obj, timeoutMs) {
    const reply = await this.request(obj, timeoutMs);
    assert.equal(reply.ok, true, `${JSON.stringify(obj)} failed: ${JSON.stringify(reply.error)}`);
    return reply.result;
  }

  // As request(), but the reply must fail with code; resolves with the error.
  async fails(obj, code, timeoutMs) {
    const reply = await this.request(obj, timeoutMs);
    assert.equal(reply.ok, false, `${JSON.stringify(obj)} should fail with ${code}, got ${reply.$line}`);
    assert.equal(typeof reply.error?.message, 'string', `error has a message: ${reply.$line}`);
    if (code) assert.equal(reply.error.code, code, `${JSON.stringify(obj)}: ${reply.$line}`);
    return reply.error;
  }

  join(room, payload) {
    return this.ok(payload === undefined ? { op: 'join', room } : { op: 'join', room, payload });
  }

  leave(room) {
    return this.ok({ op: 'leave', room });
  }

  call(room, method, ...args) {
    return this.request({ op: 'call', room, method, args });
  }

  act(room, method, ...args) {
    return this.ok({ op: 'call', room, method, args });
  }

  sync(room) {
    return this.ok({ op: 'sync', room });
  }

  // The replayed {seq, state, patches, resets, gaps, failures, syncs} of a room, or
  // undefined. syncs: one {seq, viewSeq, equal} per sync reply, taken before it reset
  // the view.
  view(room) {
    return this.views.get(room);
  }

  // Waits until the replayed state of room reaches seq (or cond(state) holds).
  untilView(room, condOrSeq, timeoutMs = 4000) {
    const cond = typeof condOrSeq === 'number'
      ? (v) => v.seq >= condOrSeq
      : (v) => condOrSeq(v.state, v);
    return this.until(() => {
      const v = this.views.get(room);
      return v !== undefined && cond(v);
    }, timeoutMs, `room ${room} view reaching ${typeof condOrSeq === 'number' ? `seq ${condOrSeq}` : condOrSeq.toString().slice(0, 120)}`);
  }

  // Closes cleanly (1000 unless code) and resolves with {code, reason}.
  async close(code = 1000, timeoutMs = 3000) {
    if (this.closeInfo) return this.closeInfo;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code);
    const timer = setTimeout(() => this.ws.terminate(), timeoutMs);
    const info = await this.closed;
    clearTimeout(timer);
    return info;
  }

  // Drops the TCP connection without a close frame.
  terminate() {
    this.ws.terminate();
    return this.closed;
  }

  // Resolves with {code, reason} once the server closed the connection, or rejects.
  async closedWithin(timeoutMs = 4000) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms; ` +
        `last frames:\n${this.tail()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

// Opens a WebSocket to url and resolves with a Client once `welcome` arrived (kept in
// client.welcome; it is also log[0]). opts: protocols, headers, autoPong, waitWelcome, and
// perMessageDeflate (ws' option: on by default, as in browsers; false offers no compression).
export async function connect(url, { protocols, headers, autoPong = true, waitWelcome = true,
  timeoutMs = 5000, perMessageDeflate = true } = {}) {
  const ws = new WebSocket(url, protocols, { headers, autoPong, handshakeTimeout: timeoutMs, perMessageDeflate });
  const client = new Client(ws);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`no upgrade within ${timeoutMs} ms`)); },
      timeoutMs);
    ws.once('open', () => { clearTimeout(timer); resolve(); });
    ws.once('unexpected-response', (req, res) => {
      clearTimeout(timer);
      const err = new Error(`upgrade refused with HTTP ${res.statusCode}`);
      err.status = res.statusCode;
      res.resume();
      ws.terminate();
      reject(err);
    });
    ws.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
  if (waitWelcome) {
    client.welcome = await client.next((m) => m.op === 'welcome', timeoutMs);
  }
  return client;
}

// Connects n clients.
export function connectMany(server, n, opts) {
  return Promise.all(Array.from({ length: n }, () => server.connect(opts)));
}

// Kills everything this test file started: call it from after().
export async function cleanup() {
  for (const c of [...clients]) c.ws.terminate();
  await Promise.all([...servers].map((s) => stopServer(s, 2000)));
}

process.on('exit', () => {
  for (const s of servers) {
    try { s.child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

// The line of a marker comment ("-- faulty:fail") in a room script, 1-based.
export function lineOf(file, marker) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(`-- ${marker}`));
  if (i < 0) throw new Error(`marker ${marker} not in ${file}`);
  return i + 1;
}

// Asserts an error message names a script and line and carries no stack traceback.
export function assertScriptMessage(message, file, line) {
  assert.equal(typeof message, 'string');
  const name = path.basename(file);
  assert.ok(message.includes(`${name}:${line}:`),
    `"${message}" should name ${name}:${line}:`);
  assert.doesNotMatch(message, /stack traceback|\[C\]|\n\s+/, `"${message}" must not carry a traceback`);
}

// A script's runtime error as a client gets it: the bare message (no position, no
// traceback) and `where`, "DIR/file.lua:LINE" with DIR the rooms directory's own name.
export function assertScriptError(error, file, line) {
  assert.equal(typeof error.message, 'string');
  const name = path.basename(file);
  assert.equal(typeof error.where, 'string', `error ${JSON.stringify(error)} should have a where`);
  assert.ok(error.where.endsWith(`/${name}:${line}`), `where "${error.where}" should be .../${name}:${line}`);
  assert.doesNotMatch(error.where, /^\//, 'where must not carry the server\'s absolute path');
  assert.doesNotMatch(error.message, /\.lua:\d+:/, `"${error.message}" must not carry a position`);
  assert.doesNotMatch(error.message, /stack traceback|\[C\]|\n\s+/, `"${error.message}" must not carry a traceback`);
}

// A fresh temporary rooms directory with the given files copied from tests/e2e/rooms
// (or given as {name: text}).
export function tempRooms(files = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-e2e-'));
  for (const [name, text] of Object.entries(files)) {
    fs.writeFileSync(path.join(dir, name), text ?? fs.readFileSync(path.join(testRooms, name)));
  }
  return dir;
}

// Prometheus text exposition format, line by line (comments, samples, blank lines).
export function assertPrometheusText(text) {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  assert.ok(lines.length > 0, 'metrics body is empty');
  let samples = 0;
  for (const l of lines) {
    if (l.startsWith('# TYPE ')) {
      assert.match(l, /^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped)$/, l);
    }
    if (l.startsWith('#')) continue;
    assert.match(l,
      /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+]?([0-9.]+([eE][-+]?[0-9]+)?|NaN|Inf|\+Inf|-Inf)( -?[0-9]+)?$/,
      `not a Prometheus sample line: ${l}`);
    samples += 1;
  }
  assert.ok(samples > 0, 'metrics hold no samples');
}
