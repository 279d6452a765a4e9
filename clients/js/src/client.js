// atrium-client: the Atrium wire protocol v1 (docs/protocol.md) for browsers and Node >= 18.
// One Client owns one WebSocket at a time (or, where WebSockets are blocked, one event stream
// of the HTTP fallback: http_socket.js). Rooms keep their state current by applying the
// server's RFC 6902 patches in seq order; a gap or a patch that does not apply asks for the
// full state again (`sync`). A dropped connection reconnects with full-jitter backoff, takes
// its seats back with `resume`, and rejoins the rooms the server did not resume (docs/client.md).
import { applyPatch } from 'fast-json-patch/module/core.mjs';
import { Emitter } from './emitter.js';
import { HttpSocket } from './http_socket.js';

export const PROTOCOL = 'atrium.v1';
/** The same protocol in MessagePack (docs/protocol.md "MessagePack"): `encoding: 'msgpack'`. */
export const MSGPACK_PROTOCOL = 'atrium.v1.msgpack';

const DEFAULTS = {
  reconnect: true,
  minReconnectDelay: 500, // ms; like centrifuge-js
  maxReconnectDelay: 20000,
  timeout: 10000, // ms for a reply, and for the welcome of a new connection
  protocols: [PROTOCOL],
  // The HTTP fallback when a WebSocket cannot be had (docs/protocol.md "HTTP fallback"):
  // 'websocket' first, then 'http' when there is no WebSocket, its upgrade fails, or no
  // welcome comes within fallbackAfter ms. ['http'] forces it; ['websocket'] never falls back.
  transports: ['websocket', 'http'],
  fallbackAfter: 3000,
};

// A JWT's exp (seconds), read without checking the signature (the server checks it); 0
// when the token is not a JWT or does not expire.
function tokenExpiry(token) {
  if (typeof token !== 'string') return 0;
  const part = token.split('.')[1];
  if (!part) return 0;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = JSON.parse(json).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : 0;
  } catch {
    return 0;
  }
}

// Close code the client uses when it gives up on a silent connection (not a clean close, so
// the server holds the seat for `resume` where it can).
const CLOSE_DEAD = 4000;
// Close code of a connection whose session another connection took over with `resume` (another
// tab, say): final for this client, which must not take the seats back (docs/protocol.md).
const CLOSE_REPLACED = 4002;

// A server's epoch, when it sent one.
const epochOf = (r) => (typeof r?.epoch === 'string' ? r.epoch : undefined);

/** An error from the server (`code` is one of the codes of docs/protocol.md) or from the
 *  client itself (`closed`, `disconnected`, `timeout`, `connect_failed`, `bad_json`,
 *  `no_websocket`). `where` is the server's `error.where` when it sent one: the place in
 *  the room script that raised it ("rooms/ttt.lua:54"); undefined otherwise. */
export class AtriumError extends Error {
  constructor(code, message, options) {
    super(message || code, options);
    this.name = 'AtriumError';
    this.code = code;
    this.where = typeof options?.where === 'string' ? options.where : undefined;
  }
}

// The AtriumError for a server's {code, message, where?}.
function serverError(e, fallback) {
  e = e && typeof e === 'object' ? e : {};
  return new AtriumError(e.code ?? 'internal', e.message ?? fallback, { where: e.where });
}

/** Full jitter (AWS "Exponential Backoff and Jitter", as in centrifuge-js): min plus a random
 *  part of up to min * 2^step, never more than max. */
export function backoff(step, min, max) {
  const cap = Math.min(max, min * 2 ** Math.min(step, 31));
  return Math.min(max, min + Math.floor(Math.random() * (cap + 1)));
}

const noop = () => {};

// The MessagePack codec for `encoding: 'msgpack'`: the `msgpack` option (the
// @msgpack/msgpack module, or anything with its encode and decodeMulti), else that package,
// loaded only then, so that JSON clients never load it. The browser builds leave it out:
// there, pass it.
async function msgpackCodec(opts) {
  const given = opts.msgpack;
  const m = given ?? (await import('@msgpack/msgpack').catch((err) => {
    throw new AtriumError('connect_failed', "encoding 'msgpack' needs @msgpack/msgpack: install it, or pass it " +
      'as the msgpack option', { cause: err });
  }));
  if (typeof m?.encode !== 'function' || typeof m?.decodeMulti !== 'function') {
    throw new AtriumError('connect_failed', 'the msgpack option needs encode and decodeMulti (@msgpack/msgpack)');
  }
  return m;
}

function toText(data) {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
  return String(data);
}

// scheme://authority, then the path (if any), then ?query and #fragment (if any).
const ABSOLUTE = /^(wss?|https?):\/\/([^/?#]*)(\/[^?#]*)?(.*)$/is;

/** The WebSocket URL for what connect() was given: ws(s) and http(s) URLs (http becomes ws),
 *  or a path relative to the page ('/ws', the default). A URL with no path, or the path '/',
 *  gets '/ws' (the server's endpoint); any other path is kept as given. */
export function resolveUrl(url) {
  if (url == null || url === '') url = '/ws';
  url = String(url);
  const m = ABSOLUTE.exec(url);
  if (m) {
    const scheme = m[1].toLowerCase().replace(/^http/, 'ws');
    const path = m[3] === undefined || m[3] === '/' ? '/ws' : m[3];
    return `${scheme}://${m[2]}${path}${m[4]}`;
  }
  const loc = globalThis.location;
  if (!loc || !loc.href) {
    throw new TypeError(`'${url}' is relative and there is no page location: pass ws://HOST:PORT/ws`);
  }
  const u = new URL(url, loc.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  if (u.pathname === '/') u.pathname = '/ws';
  return u.href;
}

// What a joined Room and a Watch share: a state kept current by patches, resynced on a gap.
class View extends Emitter {
  #resyncing = false;

  constructor(client, id, seq, state, epoch) {
    super();
    this.client = client;
    this.id = id;
    /** The room incarnation `seq` belongs to (a string from the server; undefined if it sent none). */
    this.epoch = epoch;
    this.seq = seq;
    this.state = state;
  }

  /** @internal A `patch` frame for this room. */
  _patch(msg) {
    if (this.#resyncing || msg.seq <= this.seq) return; // stale, or a duplicate
    if (msg.seq !== this.seq + 1) {
      this._resync();
      return;
    }
    let next;
    try {
      next = applyPatch(this.state, msg.ops, true, true).newDocument;
    } catch {
      this._resync(); // the patch does not fit our state: start again from the server's
      return;
    }
    this.state = next;
    this.seq = msg.seq;
    this._fire('state', this.state, msg.ops);
  }

  /** @internal A whole state: a `state` frame, a sync or a rejoin. It replaces the state
   *  whatever its seq: another epoch starts the seqs again. */
  _replace(seq, state, epoch) {
    if (epoch !== undefined) this.epoch = epoch;
    this.seq = seq;
    this.state = state;
    this._fire('state', this.state, undefined);
  }

  /** @internal Ask for the full state again; patches are ignored until it comes. */
  _resync() {
    if (this.#resyncing) return;
    this.#resyncing = true;
    this._fetchState()
      .then((r) => {
        this.#resyncing = false;
        this._replace(r.seq, r.state, epochOf(r));
      })
      .catch((err) => {
        this.#resyncing = false;
        // A dropped connection restores every room anyway; anything else is worth a look.
        if (err.code !== 'disconnected' && err.code !== 'closed') this._fire('error', err);
      });
  }
}

/** A room this client is a member of (from `join` or a server-side `joined`). */
export class Room extends View {
  #payload;

  constructor(client, id, seq, state, epoch, payload, placed) {
    super(client, id, seq, state, epoch);
    this.#payload = payload;
    this.joined = true;
    /** true when server-side code placed this client here (a `joined` frame). */
    this.placed = placed;
    /** After a reconnect: true when the server resumed the seat and sent exactly the patches
     *  missed, false when the state was replaced (a `state` frame or a rejoin); undefined
     *  before any reconnect. */
    this.recovered = undefined;
  }

  /** @internal */
  _fetchState(opts) {
    return this.client._request({ op: 'sync', room: this.id }, opts);
  }

  /** @internal for rejoins */
  _payload() {
    return this.#payload;
  }

  /** @internal The client is out of this room: fires 'left' once. */
  _left(reason, message) {
    if (!this.joined) return;
    this.joined = false;
    this._fire('left', reason, message);
  }

  /** Calls an action; resolves with what it returned. */
  call(method, ...args) {
    return this.client._request({ op: 'call', room: this.id, method, args });
  }

  /** Sends an event to the room (onEvent, or the other members of an untyped room). The
   *  returned promise may be ignored: its rejection is then dropped silently. */
  emit(event, data) {
    const p = this.client._request({ op: 'emit', room: this.id, event, data });
    p.catch(noop);
    return p;
  }

  /** Asks the server for the full state again (rarely needed: gaps do this by themselves). */
  sync() {
    return this.client._request(
      { op: 'sync', room: this.id },
      { onResult: (r) => (this._replace(r.seq, r.state, epochOf(r)), this.state) },
    );
  }

  /** Leaves the room. Resolves once the server agreed (at once when offline); never rejects
   *  because the room is already left. */
  async leave() {
    if (!this.joined) return;
    const done = () => {
      this.client._forget(this);
      this._left('leave');
    };
    if (this.client.status !== 'open') {
      this.client._leftOffline(this.id); // a seat the server may still hold: not taken back
      return done();
    }
    try {
      await this.client._request({ op: 'leave', room: this.id }, { onResult: done });
    } catch (err) {
      done(); // not_member, or the connection went: either way we are out
      if (err.code === 'timeout') throw err;
    }
  }
}

/** A room followed without membership (the `watch` op; the inspector). */
export class Watch extends View {
  #token;

  constructor(client, id, seq, state, epoch, token) {
    super(client, id, seq, state, epoch);
    this.#token = token;
    this.active = true;
  }

  /** @internal */
  _fetchState(opts) {
    return this.client._request({ op: 'watch', room: this.id, token: this.#token }, opts);
  }

  /** @internal */
  _setToken(token) {
    this.#token = token;
  }

  /** @internal */
  _left(reason, message) {
    if (!this.active) return;
    this.active = false;
    this._fire('left', reason, message);
  }

  /** Stops watching. */
  async unwatch() {
    if (!this.active) return;
    this.client._forgetWatch(this);
    this._left('unwatch');
    if (this.client.status === 'open') {
      await this.client._request({ op: 'unwatch', room: this.id }).catch(noop);
    }
  }
}

export class Client extends Emitter {
  #url;
  #opts;
  #ws = null;
  #ref = 0;
  #pending = new Map(); // ref -> request sent on the current socket
  #queue = []; // requests waiting for the connection to be back
  #attempt = 0;
  #reconnectTimer = null;
  #reconnecting = false;
  #pingTimer = null;
  #lastFrame = 0;
  #abortOpen = null;
  #refreshTimer = null;
  #lastToken = null; // the token the current socket was opened with
  #msgpack = null; // the codec, with encoding 'msgpack'
  #transport = null; // 'websocket' or 'http': the one that worked, kept for reconnects
  #leftOffline = new Set(); // rooms left while reconnecting: their held seats are let go

  constructor(url, options = {}) {
    super();
    this.#opts = { ...DEFAULTS, ...options };
    if (this.#opts.encoding === 'msgpack' && options.protocols === undefined) this.#opts.protocols = [MSGPACK_PROTOCOL];
    this.#url = resolveUrl(url);
    /** 'connecting' | 'open' | 'reconnecting' | 'closed' */
    this.status = 'connecting';
    this.id = null;
    this.session = null;
    this.userId = null;
    this.server = null;
    this.heartbeat = 0;
    /** @type {Map<string, Room>} */
    this.rooms = new Map();
    /** @type {Map<string, Watch>} */
    this.watches = new Map();
  }

  get url() {
    return this.#url;
  }

  /** @internal First connection: resolves at `welcome`. */
  async _start() {
    try {
      const welcome = await this.#open();
      this.id = welcome.client;
      this.session = welcome.session;
    } catch (err) {
      this.#setStatus('closed');
      throw err.code === 'connect_failed' || err.code === 'no_websocket'
        ? err
        : new AtriumError('connect_failed', err.message, { cause: err });
    }
    this.#setStatus('open');
    this.#flushQueue();
  }

  #flushQueue() {
    const queued = this.#queue;
    this.#queue = [];
    for (const req of queued) this.#send(req);
  }

  /** The room with this id, if this client is a member. */
  room(id) {
    return this.rooms.get(id);
  }

  /** Joins a room; resolves with its Room, rejects with AtriumError (join_rejected, ...). */
  join(id, payload) {
    // A copy for the rejoins after a reconnect: later changes to the caller's object do not leak in.
    const kept = payload == null ? {} : JSON.parse(JSON.stringify(payload));
    return this._request(
      { op: 'join', room: id, payload: payload ?? undefined },
      {
        onResult: (r) => {
          // Registered before any later line of the same message is handled.
          const old = this.rooms.get(r.room);
          if (old) old._left('replaced');
          const room = new Room(this, r.room, r.seq, r.state, epochOf(r), kept, false);
          this.rooms.set(room.id, room);
          return room;
        },
      },
    );
  }

  /** Follows a room's public state without joining it (needs the admin token when the
   *  server has one). Resolves with a Watch; rejects with unauthorized or not_found. */
  watch(id, options = {}) {
    const token = options.token ?? undefined;
    return this._request(
      { op: 'watch', room: id, token },
      {
        onResult: (r) => {
          let w = this.watches.get(r.room);
          if (w) {
            w._setToken(token);
            w._replace(r.seq, r.state, epochOf(r));
          } else {
            w = new Watch(this, r.room, r.seq, r.state, epochOf(r), token);
            this.watches.set(w.id, w);
          }
          return w;
        },
      },
    );
  }

  /** Round trip in ms. */
  async ping() {
    const t0 = Date.now();
    await this._request({ op: 'ping' });
    return Date.now() - t0;
  }

  /** Sends any request (an op this client has no method for) and resolves with its result. */
  request(op, fields = {}) {
    return this._request({ ...fields, op });
  }

  /** Closes the connection for good (a clean close: the server runs onLeave at once).
   *  Rooms fire 'left' ('leave'), pending requests reject with `closed`. Resolves when the
   *  socket has closed (or after a second). */
  close() {
    if (this.status === 'closed') return Promise.resolve();
    const ws = this.#ws;
    this.#ws = null;
    this.#stopTimers();
    this.#setStatus('closed');
    this.#abortOpen?.();
    this.#leftOffline.clear();
    this.#failAll(new AtriumError('closed', 'the client was closed'));
    for (const room of [...this.rooms.values()]) room._left('leave');
    this.rooms.clear();
    for (const w of [...this.watches.values()]) w._left('closed');
    this.watches.clear();
    if (!ws) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 1000);
      ws.onclose = () => {
        clearTimeout(timer);
        resolve();
      };
      ws.onmessage = null;
      try {
        ws.close(1000, 'bye');
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  // ---- requests ---------------------------------------------------------------------

  /** @internal Sends now when open, else waits (bounded by the timeout) for the reconnect.
   *  onResult runs synchronously when the reply is handled, before the next frame. */
  _request(msg, { onResult, internal = false } = {}) {
    return new Promise((resolve, reject) => {
      if (this.status === 'closed') {
        reject(new AtriumError('closed', 'the client is closed'));
        return;
      }
      const req = { msg, resolve, reject, onResult, timer: null, ref: 0 };
      req.timer = setTimeout(() => {
        this.#pending.delete(req.ref);
        const i = this.#queue.indexOf(req);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(new AtriumError('timeout', `no reply to '${msg.op}' within ${this.#opts.timeout} ms`));
      }, this.#opts.timeout);
      if (internal || this.status === 'open') this.#send(req);
      else this.#queue.push(req);
    });
  }

  #send(req) {
    const ws = this.#ws;
    if (!ws) {
      clearTimeout(req.timer);
      req.reject(new AtriumError('disconnected', 'not connected'));
      return;
    }
    req.ref = ++this.#ref;
    this.#pending.set(req.ref, req);
    try {
      const msg = { ...req.msg, ref: req.ref };
      ws.send(this.#msgpack && !(ws instanceof HttpSocket) ? this.#msgpack.encode(msg) : JSON.stringify(msg));
    } catch (err) {
      this.#pending.delete(req.ref);
      clearTimeout(req.timer);
      req.reject(new AtriumError('disconnected', `send failed: ${err.message}`, { cause: err }));
    }
  }

  #failAll(err) {
    const reqs = [...this.#pending.values(), ...this.#queue];
    this.#pending.clear();
    this.#queue = [];
    for (const req of reqs) {
      clearTimeout(req.timer);
      req.reject(err);
    }
  }

  /** @internal */
  _forget(room) {
    if (this.rooms.get(room.id) === room) this.rooms.delete(room.id);
  }

  /** @internal A room left while offline: if the server still holds its seat, a resume
   *  gives it back (a `joined` frame), and the client lets it go at once. */
  _leftOffline(id) {
    this.#leftOffline.add(id);
  }

  /** @internal */
  _forgetWatch(w) {
    if (this.watches.get(w.id) === w) this.watches.delete(w.id);
  }

  // ---- the socket -------------------------------------------------------------------

  #setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    if (status !== 'connecting') this._fire('status', status);
  }

  /**
   * Sends a fresh token for this connection's user before its token expires (op `auth`);
   * resolves when the server took it, rejects with AtriumError `unauthorized` (nothing
   * changed). With a `token` function the client does this by itself.
   */
  async auth(token) {
    await this._request({ op: 'auth', token });
    this.#scheduleRefresh(token);
  }

  // With a token function and a token that expires: a fresh one is sent in band a little
  // before exp (a tenth of its life, 5 to 60 s), so the server never closes the connection
  // with 4003. A refresh that fails is tried again by the reconnect that 4003 causes.
  #scheduleRefresh(token) {
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    const exp = tokenExpiry(token);
    if (!exp || typeof this.#opts.token !== 'function') return;
    const left = exp * 1000 - Date.now();
    const margin = Math.min(60000, Math.max(5000, left / 10));
    this.#refreshTimer = setTimeout(async () => {
      this.#refreshTimer = null;
      try {
        const fresh = await this.#opts.token();
        if (fresh && this.status === 'open') await this.auth(fresh);
      } catch {
        /* the server closes at exp; the reconnect gets a fresh token */
      }
    }, Math.max(1000, left - margin));
  }

  async #wsUrl() {
    let token = this.#opts.token;
    if (typeof token === 'function') token = await token();
    this.#lastToken = token;
    if (!token) return this.#url;
    const u = new URL(this.#url);
    u.searchParams.set('token', token);
    return u.href;
  }

  // Opens a socket; resolves with its `welcome`, rejects if it closes or stays silent first.
  // The caller takes the client id and session from it: after a resume they stay the old ones.
  // Opens a socket of the transport that works: a WebSocket, or the HTTP fallback when the
  // options allow it and a WebSocket cannot be had (none, a refused upgrade, no welcome in
  // fallbackAfter ms). The first that works is kept for every reconnect.
  async #open() {
    const transports = this.#opts.transports ?? DEFAULTS.transports;
    const WS = this.#opts.WebSocket ?? globalThis.WebSocket;
    const canWs = transports.includes('websocket') && typeof WS === 'function';
    const canHttp = transports.includes('http');
    if (!canWs && !canHttp) {
      throw new AtriumError('no_websocket', 'no WebSocket: pass one as the WebSocket option (the ws package in Node)');
    }
    // A codec asked for but unusable is a mistake to report, not a reason to fall back.
    if (canWs && this.#opts.encoding === 'msgpack') this.#msgpack ??= await msgpackCodec(this.#opts);
    if (this.#transport === 'http' || !canWs) return this.#openWith('http');
    if (this.#transport === 'websocket' || !canHttp) return this.#openWith('websocket', WS);
    try {
      const welcome = await this.#openWith('websocket', WS, Math.min(this.#opts.fallbackAfter, this.#opts.timeout));
      this.#transport = 'websocket';
      return welcome;
    } catch (err) {
      if (err.code === 'closed') throw err;
      const welcome = await this.#openWith('http');
      this.#transport = 'http';
      return welcome;
    }
  }

  async #openWith(transport, WS, timeout = this.#opts.timeout) {
    const url = await this.#wsUrl();
    if (this.status === 'closed') throw new AtriumError('closed', 'the client was closed');
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = transport === 'http' ? new HttpSocket(url, [], { fetch: this.#opts.fetch })
          : new WS(url, this.#opts.protocols);
      } catch (err) {
        reject(new AtriumError('connect_failed', err.message, { cause: err }));
        return;
      }
      ws.binaryType = 'arraybuffer';
      this.#ws = ws;
      let welcomed = false;
      const timer = setTimeout(() => {
        fail(new AtriumError('connect_failed', `no welcome from ${this.#url} within ${timeout} ms`));
        try {
          ws.close(CLOSE_DEAD, 'no welcome');
        } catch {
          /* already closing */
        }
      }, timeout);
      const fail = (err) => {
        clearTimeout(timer);
        this.#abortOpen = null;
        if (this.#ws === ws) this.#ws = null;
        reject(err);
      };
      this.#abortOpen = () => fail(new AtriumError('closed', 'the client was closed'));
      ws.onmessage = (ev) => {
        if (this.#ws !== ws) return;
        this.#lastFrame = Date.now();
        this.#receive(ev.data, (welcome) => {
          welcomed = true;
          clearTimeout(timer);
          this.#abortOpen = null;
          this.userId = welcome.userId ?? null;
          this.server = welcome.server ?? null;
          this.heartbeat = welcome.heartbeat ?? 0;
          this.#startPing();
          this.#scheduleRefresh(this.#lastToken);
          resolve(welcome);
        });
      };
      ws.onerror = () => {}; // the close that follows says what happened
      ws.onclose = (ev) => {
        if (!welcomed) {
          fail(new AtriumError('connect_failed', `could not connect to ${this.#url} (close ${ev.code})`));
          return;
        }
        if (this.#ws !== ws) return;
        this.#dropped(ev.code, ev.reason);
      };
    });
  }

  // The current socket is gone without close(): fail what was in flight, then reconnect.
  #dropped(code, reason) {
    this.#ws = null;
    this.#stopPing();
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    const why = `connection lost (${code}${reason ? `: ${reason}` : ''})`;
    const err = new AtriumError('disconnected', why);
    const inflight = [...this.#pending.values()];
    this.#pending.clear();
    for (const req of inflight) {
      clearTimeout(req.timer);
      req.reject(err);
    }
    if (this.status === 'closed') return;
    // 4002: another connection resumed this session (another tab took it over). Reconnecting
    // would take the seats back from it, and it them again: this client ends here.
    const replaced = code === CLOSE_REPLACED;
    if (replaced || !this.#opts.reconnect) {
      const left = replaced ? 'replaced' : 'disconnect';
      const message = replaced ? reason || 'session resumed elsewhere' : why;
      if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = null;
      this.#leftOffline.clear();
      this.#setStatus('closed');
      this.#failAll(replaced ? new AtriumError('closed', `the client was closed: ${message}`) : err);
      for (const room of [...this.rooms.values()]) room._left(left, message);
      this.rooms.clear();
      for (const w of [...this.watches.values()]) w._left(left, message);
      this.watches.clear();
      return;
    }
    this.#setStatus('reconnecting');
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    if (this.#reconnectTimer || this.#reconnecting || this.status === 'closed') return;
    const delay = backoff(this.#attempt, this.#opts.minReconnectDelay, this.#opts.maxReconnectDelay);
    this.#attempt += 1;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#reconnect();
    }, delay);
  }

  async #reconnect() {
    this.#reconnecting = true;
    let ok = false;
    try {
      const welcome = await this.#open();
      await this.#restore(welcome);
      ok = this.#ws !== null && this.status === 'reconnecting';
    } catch {
      // a failed attempt: the next one is scheduled below
    }
    this.#reconnecting = false;
    if (this.status === 'closed') return;
    if (!ok) {
      if (this.#ws) {
        // restore failed on a live socket (a timeout): start over on a fresh one
        const ws = this.#ws;
        this.#ws = null;
        this.#stopPing();
        try {
          ws.close(CLOSE_DEAD, 'restore failed');
        } catch {
          /* already closing */
        }
      }
      this.#scheduleReconnect();
      return;
    }
    this.#attempt = 0;
    this.#setStatus('open');
    this.#flushQueue();
  }

  // After a reconnect: take the seats back with `resume` (the frames the server sends before
  // its reply bring each room up to date), rejoin the rooms it did not resume, watch again.
  async #restore(welcome) {
    const oldSession = this.session;
    const oldId = this.id;
    const rooms = [...this.rooms.values()];
    let rejoin = rooms;
    let resumed = false;
    // With no room left, a resume still lets go of the seats of rooms left while offline.
    if ((rooms.length > 0 || this.#leftOffline.size > 0) && oldSession) {
      const listed = {};
      for (const room of rooms) {
        listed[room.id] = room.epoch === undefined ? { seq: room.seq } : { seq: room.seq, epoch: room.epoch };
      }
      try {
        rejoin = await this._request(
          { op: 'resume', session: oldSession, rooms: listed },
          { internal: true, onResult: (r) => this.#resumed(r, rooms, oldId) },
        );
        resumed = true;
      } catch (err) {
        if (err.code === 'disconnected' || err.code === 'timeout' || err.code === 'closed') throw err;
        // not_found (the session expired, or held no seat), bad_request, not_allowed,
        // unknown_op (an older server): this connection is a new client; rejoin everything
      }
    }
    if (!resumed) {
      this.id = welcome.client;
      this.session = welcome.session;
    }
    this.#leftOffline.clear();
    const work = [];
    for (const room of rejoin) {
      if (this.rooms.get(room.id) !== room) continue; // left meanwhile
      work.push(
        this._request(
          { op: 'join', room: room.id, payload: room._payload() },
          {
            internal: true,
            onResult: (r) => {
              room.recovered = false;
              room._replace(r.seq, r.state, epochOf(r));
            },
          },
        ).catch((err) => {
          if (err.code === 'disconnected' || err.code === 'timeout') throw err;
          this._forget(room);
          room._left('rejected', err.message);
        }),
      );
    }
    for (const w of this.watches.values()) {
      work.push(
        w._fetchState({ internal: true }).then(
          (r) => w._replace(r.seq, r.state, epochOf(r)),
          (err) => {
            if (err.code === 'disconnected' || err.code === 'timeout') throw err;
            this._forgetWatch(w);
            w._left(err.code === 'not_found' ? 'closed' : 'rejected', err.message);
          },
        ),
      );
    }
    await Promise.all(work);
  }

  // The `resume` reply, handled before the next frame: the missed patches (or a `state`)
  // are applied already. Returns the rooms to rejoin.
  #resumed(r, rooms, oldId) {
    const result = r && typeof r === 'object' ? r : {};
    const entries = result.rooms && typeof result.rooms === 'object' ? result.rooms : {};
    this.id = typeof result.client === 'string' ? result.client : oldId;
    // The old session goes on: the new connection's welcome session is void after a resume.
    if (typeof result.session === 'string') this.session = result.session;
    const rejoin = [];
    for (const room of rooms) {
      const entry = Object.hasOwn(entries, room.id) ? entries[room.id] : undefined;
      if (this.rooms.get(room.id) !== room) {
        // Left while the resume was on its way (a `left` frame, or room.leave() offline,
        // which the server did not know of: let the seat go).
        if (this.#leftOffline.has(room.id) && typeof entry?.recovered === 'boolean' && !this.rooms.has(room.id)) {
          this._request({ op: 'leave', room: room.id }, { internal: true }).catch(noop);
        }
        continue;
      }
      if (entry && typeof entry === 'object' && typeof entry.left === 'string') {
        if (entry.left === 'kicked' || entry.left === 'closed') {
          this.rooms.delete(room.id);
          room._left(entry.left);
        } else {
          rejoin.push(room); // not_member: the seat is gone, the room perhaps not
        }
        continue;
      }
      if (!entry || typeof entry !== 'object' || typeof entry.recovered !== 'boolean') {
        rejoin.push(room); // not listed in the reply: join again
        continue;
      }
      room.recovered = entry.recovered;
      // The frames before the reply took the room to the reply's seq; if not (a patch that
      // did not apply, say), a sync puts it right once the connection is open.
      const epoch = epochOf(entry);
      if ((typeof entry.seq === 'number' && entry.seq !== room.seq) || (epoch !== undefined && epoch !== room.epoch)) {
        room._resync();
      }
      room._fire('resumed', { recovered: entry.recovered });
    }
    return rejoin;
  }

  #startPing() {
    this.#stopPing();
    const every = this.heartbeat > 0 ? this.heartbeat : 25000;
    this.#lastFrame = Date.now();
    // The server's WebSocket pings are invisible to page scripts; a quiet connection is
    // checked with a `ping` request, and one that does not answer is treated as dropped.
    this.#pingTimer = setInterval(() => {
      if (!this.#ws || Date.now() - this.#lastFrame < every) return;
      const ws = this.#ws;
      this._request({ op: 'ping' }, { internal: true }).catch((err) => {
        if (err.code !== 'timeout' || this.#ws !== ws) return;
        this.#dropped(CLOSE_DEAD, 'no answer to ping');
        try {
          ws.close(CLOSE_DEAD, 'no answer to ping');
        } catch {
          /* already closing */
        }
      });
    }, every);
  }

  #stopPing() {
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    this.#pingTimer = null;
  }

  #stopTimers() {
    this.#stopPing();
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
  }

  // ---- frames -----------------------------------------------------------------------

  // One WebSocket message: JSON Lines, or (binary, with encoding 'msgpack') MessagePack
  // values back to back.
  #receive(data, onWelcome) {
    if (this.#msgpack && typeof data !== 'string') {
      let values;
      try {
        values = [...this.#msgpack.decodeMulti(data instanceof ArrayBuffer ? new Uint8Array(data) : data)];
      } catch (err) {
        this._fire('error', new AtriumError('bad_json', `unreadable MessagePack from the server: ${err.message}`));
        return;
      }
      for (const msg of values) {
        if (msg && msg.op === 'welcome') onWelcome(msg);
        else if (msg && typeof msg === 'object') this.#dispatch(msg);
      }
      return;
    }
    for (const line of toText(data).split('\n')) {
      if (line.trim() === '') continue;
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        this._fire('error', new AtriumError('bad_json', `unreadable frame from the server: ${line.slice(0, 200)}`));
        continue;
      }
      if (msg && msg.op === 'welcome') onWelcome(msg);
      else if (msg && typeof msg === 'object') this.#dispatch(msg);
    }
  }

  #dispatch(msg) {
    switch (msg.op) {
      case 'reply': {
        const req = this.#pending.get(msg.ref);
        if (!req) return; // timed out already
        this.#pending.delete(msg.ref);
        clearTimeout(req.timer);
        if (msg.ok) {
          let value = msg.result;
          if (req.onResult) {
            try {
              value = req.onResult(msg.result);
            } catch (err) {
              req.reject(err);
              return;
            }
          }
          req.resolve(value);
        } else {
          req.reject(serverError(msg.error, 'request failed'));
        }
        return;
      }
      case 'patch': {
        this.rooms.get(msg.room)?._patch(msg);
        this.watches.get(msg.room)?._patch(msg);
        return;
      }
      case 'state': {
        // Replaces the state whatever the seq: after a resume it may be of another epoch.
        this.rooms.get(msg.room)?._replace(msg.seq, msg.state, epochOf(msg));
        this.watches.get(msg.room)?._replace(msg.seq, msg.state, epochOf(msg));
        return;
      }
      case 'event': {
        const ev = { event: msg.event, data: msg.data };
        if (msg.from !== undefined) ev.from = msg.from;
        const room = this.rooms.get(msg.room);
        if (room) room._fire('event', ev);
        else this.watches.get(msg.room)?._fire('event', ev);
        return;
      }
      case 'fault': {
        const w = this.watches.get(msg.room);
        if (w) w._fire('fault', { in: msg.in, error: serverError(msg.error, 'script error'), traceback: msg.traceback });
        return;
      }
      case 'joined': {
        const known = this.rooms.get(msg.room);
        if (known) {
          known._replace(msg.seq, msg.state, epochOf(msg));
          return;
        }
        if (this.#leftOffline.has(msg.room)) {
          // A seat the resume gave back although room.leave() was called while offline.
          this.#leftOffline.delete(msg.room);
          this._request({ op: 'leave', room: msg.room }, { internal: true }).catch(noop);
          return;
        }
        const room = new Room(this, msg.room, msg.seq, msg.state, epochOf(msg), {}, true);
        this.rooms.set(room.id, room);
        this._fire('joined', room);
        return;
      }
      case 'left': {
        const room = this.rooms.get(msg.room);
        if (room) {
          this.rooms.delete(msg.room);
          room._left(msg.reason, msg.message);
          return;
        }
        const w = this.watches.get(msg.room);
        if (w) {
          this.watches.delete(msg.room);
          w._left(msg.reason, msg.message);
        }
        return;
      }
      case 'error': {
        this._fire('error', serverError(msg.error, 'server error'));
        return;
      }
      default:
        this._fire('frame', msg); // ops newer than this client
    }
  }
}

/** Connects and resolves with a Client once the server said `welcome`. */
export async function connect(url, options) {
  const client = new Client(url, options);
  await client._start();
  return client;
}
