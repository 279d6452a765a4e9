// Test helpers: start the real `atrium serve` (ATRIUM_BIN, default <repo>/build/atrium) on a
// free port, and a WebSocket wrapper that lets a test see what the client sends, drop
// incoming lines, or cut the connection. Every wait has a timeout.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import WebSocket from 'ws';
import { connect } from '../src/index.js';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..', '..');
export const testRooms = path.join(here, 'rooms');
export const exampleRooms = path.join(repo, 'rooms');
export const BIN = process.env.ATRIUM_BIN
  ? path.resolve(process.env.ATRIUM_BIN)
  : path.join(repo, 'build', 'atrium');

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let counter = 0;
/** A room instance name no other test of this process uses. */
export function uid(prefix = 't') {
  counter += 1;
  return `${prefix}${process.pid}x${counter}`;
}

/** Resolves when fn() is truthy (polled every 10 ms); rejects after ms with what. */
export async function until(fn, what = 'condition', ms = 3000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Resolves with the arguments of the next `name` event of emitter (its .on returns an off). */
export function nextEvent(emitter, name, ms = 3000, pred = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no '${name}' event within ${ms} ms`));
    }, ms);
    const off = emitter.on(name, (...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}

// ATRIUM_* settings of the shell must not change the server under test.
function serverEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('ATRIUM_') && k !== 'ATRIUM_LUA_PATH') continue;
    env[k] = v;
  }
  return env;
}

/** Starts the server; resolves {url, origin, port, http(), stop(), output()}. */
export async function startServer({ rooms = testRooms, port = 0, args = [], timeoutMs = 10000 } = {}) {
  const child = spawn(BIN, ['serve', '--rooms', rooms, '--port', String(port), '--host', '127.0.0.1', ...args], {
    cwd: repo,
    env: serverEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { out = (out + d).slice(-200000); });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
  const bound = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`no "atrium listening" line within ${timeoutMs} ms`), timeoutMs);
    function fail(why) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${why} (${BIN})\n${out}`));
    }
    child.stdout.on('data', (d) => {
      out = (out + d).slice(-200000);
      const m = /atrium listening on (\S+):(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[2]));
      }
    });
    child.on('error', (e) => fail(e.code === 'ENOENT' ? 'atrium binary not found: build it or set ATRIUM_BIN' : e.message));
    child.on('exit', (code) => fail(`server exited (${code}) before listening`));
  });
  const origin = `http://127.0.0.1:${bound}`;
  return {
    port: bound,
    origin,
    url: `ws://127.0.0.1:${bound}/ws`,
    output: () => out,
    async http(method, p, body, headers = {}) {
      const res = await fetch(origin + p, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      const text = await res.text();
      let json;
      try { json = JSON.parse(text); } catch { json = undefined; }
      return { status: res.status, json, text };
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * A WebSocket class for the client's WebSocket option that wraps `ws` and records every
 * socket it made in `sockets`. Each socket has: sent (parsed frames the client sent),
 * received (lines it got), drop (a predicate: incoming lines it returns true for are
 * swallowed), cut() (drops the TCP connection without a close handshake). While
 * `tap.refuse` is true, new sockets fail at once (close 1006, no welcome) without reaching
 * the server, and are only counted in `tap.refused`: a client stays away while a test acts.
 */
export function tappedWebSocket() {
  const sockets = [];
  const tap = { WebSocket: null, sockets, last: () => sockets[sockets.length - 1], refuse: false, refused: 0 };
  class Tapped {
    constructor(url, protocols) {
      this.url = url;
      this.sent = [];
      this.received = [];
      this.drop = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      if (tap.refuse) {
        tap.refused += 1;
        this.ws = null;
        setTimeout(() => this.onclose && this.onclose({ code: 1006, reason: '' }), 0);
        return;
      }
      this.ws = new WebSocket(url, protocols);
      this.ws.binaryType = 'arraybuffer';
      this.ws.onmessage = (ev) => {
        const text = typeof ev.data === 'string' ? ev.data : Buffer.from(ev.data).toString('utf8');
        const kept = [];
        for (const line of text.split('\n')) {
          if (!line) continue;
          this.received.push(line);
          if (this.drop && this.drop(JSON.parse(line))) continue;
          kept.push(line);
        }
        if (kept.length && this.onmessage) this.onmessage({ data: kept.join('\n') });
      };
      this.ws.onclose = (ev) => this.onclose && this.onclose({ code: ev.code, reason: ev.reason });
      this.ws.onerror = (ev) => this.onerror && this.onerror(ev);
      sockets.push(this);
    }
    set binaryType(v) { if (this.ws) this.ws.binaryType = v; }
    get binaryType() { return this.ws ? this.ws.binaryType : 'arraybuffer'; }
    get readyState() { return this.ws ? this.ws.readyState : 3; }
    send(data) {
      if (!this.ws) throw new Error('not connected');
      this.sent.push(JSON.parse(data));
      this.ws.send(data);
    }
    close(code, reason) { this.ws?.close(code, reason); }
    cut() { this.ws?.terminate(); }
  }
  tap.WebSocket = Tapped;
  return tap;
}

export { WebSocket };

// One server for a describe block, started before its tests and stopped after them with
// every client the tests opened. ctx.open(opts, url?) connects a client with `clientDefaults`
// (WebSocket is always `ws`); ctx.track(c) closes another one at the end.
export function useServer({ server: serverOptions = {}, client: clientDefaults = {} } = {}) {
  const clients = [];
  const ctx = {
    server: null,
    track(c) { clients.push(c); return c; },
    async open(opts = {}, url = ctx.server.url) {
      return ctx.track(await connect(url, { WebSocket, ...clientDefaults, ...opts }));
    },
  };
  before(async () => { ctx.server = await startServer(serverOptions); });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await ctx.server?.stop();
  });
  return ctx;
}
