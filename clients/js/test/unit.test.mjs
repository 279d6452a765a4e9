// The client without a server: backoff, errors, urls, and frame handling against a fake
// WebSocket that plays the server's side from a script.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, backoff, AtriumError, resolveUrl, Client } from '../src/index.js';
import { sleep } from './helpers.mjs';

// A fake socket: opens at once, says welcome, and answers each request with respond(msg).
// welcome(n) gives the session and client of the n-th socket (0 first).
function fakeSocket(respond, heartbeat = 60000, welcome = () => ({ session: 's1', client: 'c7' })) {
  const made = [];
  class Fake {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.sent = [];
      this.closed = null;
      const n = made.length;
      made.push(this);
      setTimeout(() => this.push({ op: 'welcome', ...welcome(n), server: 'fake', heartbeat }), 0);
    }
    push(...frames) {
      this.onmessage?.({ data: frames.map((f) => (typeof f === 'string' ? f : JSON.stringify(f))).join('\n') });
    }
    send(data) {
      const msg = JSON.parse(data);
      this.sent.push(msg);
      const answer = respond(msg, this);
      if (answer) setTimeout(() => this.push(...answer), 0);
    }
    close(code = 1000, reason = '') {
      if (this.closed) return;
      this.closed = { code, reason };
      setTimeout(() => this.onclose?.({ code, reason }), 0);
    }
    drop(code = 1006, reason = '') {
      this.closed = { code };
      this.onclose?.({ code, reason });
    }
  }
  return { Fake, made };
}

test('backoff is full jitter between min and max', () => {
  for (let step = 0; step < 40; step++) {
    for (let i = 0; i < 50; i++) {
      const d = backoff(step, 500, 20000);
      assert.ok(d >= 500 && d <= 20000, `step ${step}: ${d}`);
      assert.ok(d <= 500 + 500 * 2 ** step, `step ${step}: ${d} above min + min*2^step`);
    }
  }
  const spread = new Set(Array.from({ length: 200 }, () => backoff(5, 100, 100000)));
  assert.ok(spread.size > 50, 'delays are spread out, not fixed');
});

test('AtriumError carries code and message and is an Error', () => {
  const e = new AtriumError('join_rejected', 'wrong password');
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'AtriumError');
  assert.equal(e.code, 'join_rejected');
  assert.equal(e.message, 'wrong password');
});

test('resolveUrl accepts ws, http and page-relative urls', () => {
  assert.equal(resolveUrl('ws://h:1/ws'), 'ws://h:1/ws');
  assert.equal(resolveUrl('https://h/ws'), 'wss://h/ws');
  assert.throws(() => resolveUrl('/ws'), /relative/);
  globalThis.location = { href: 'https://example.test:8443/chat/index.html' };
  try {
    assert.equal(resolveUrl(), 'wss://example.test:8443/ws');
    assert.equal(resolveUrl('/ws'), 'wss://example.test:8443/ws');
    assert.equal(resolveUrl('/'), 'wss://example.test:8443/ws');
  } finally {
    delete globalThis.location;
  }
});

test('resolveUrl: a URL with no path, or the path /, means the /ws endpoint', () => {
  assert.equal(resolveUrl('http://127.0.0.1:8080'), 'ws://127.0.0.1:8080/ws');
  assert.equal(resolveUrl('http://127.0.0.1:8080/'), 'ws://127.0.0.1:8080/ws');
  assert.equal(resolveUrl('https://example.test'), 'wss://example.test/ws');
  assert.equal(resolveUrl('HTTPS://example.test/'), 'wss://example.test/ws');
  assert.equal(resolveUrl('ws://h:1'), 'ws://h:1/ws');
  assert.equal(resolveUrl('wss://h:1/'), 'wss://h:1/ws');
  assert.equal(resolveUrl('ws://[::1]:9000'), 'ws://[::1]:9000/ws');
  assert.equal(resolveUrl('http://h:1?token=a.b.c'), 'ws://h:1/ws?token=a.b.c');
  assert.equal(resolveUrl('ws://h:1/?x=1'), 'ws://h:1/ws?x=1');
  // Explicit paths are kept as given.
  assert.equal(resolveUrl('ws://h:1/ws'), 'ws://h:1/ws');
  assert.equal(resolveUrl('wss://proxy.test/atrium/ws?x=1'), 'wss://proxy.test/atrium/ws?x=1');
  assert.equal(resolveUrl('http://h/other'), 'ws://h/other');
});

test('connect(http://host:port) opens ws://host:port/ws', async () => {
  const { Fake, made } = fakeSocket(() => null);
  const c = await connect('http://127.0.0.1:8080', { WebSocket: Fake });
  assert.equal(made[0].url, 'ws://127.0.0.1:8080/ws');
  assert.equal(c.url, 'ws://127.0.0.1:8080/ws');
  await c.close();
  const { Fake: Fake2, made: made2 } = fakeSocket(() => null);
  const c2 = await connect('wss://example.test/', { WebSocket: Fake2, token: 't' });
  assert.equal(made2[0].url, 'wss://example.test/ws?token=t');
  await c2.close();
});

test('connect without any WebSocket fails with no_websocket when the HTTP fallback is off', async () => {
  const saved = globalThis.WebSocket;
  delete globalThis.WebSocket;
  try {
    await assert.rejects(connect('ws://127.0.0.1:1/ws', { transports: ['websocket'] }),
      (e) => e instanceof AtriumError && e.code === 'no_websocket');
    // With it on (the default), it tries HTTP instead: nothing listens there either.
    await assert.rejects(connect('ws://127.0.0.1:1/ws'), (e) => e instanceof AtriumError && e.code === 'connect_failed');
  } finally {
    if (saved) globalThis.WebSocket = saved;
  }
});

test('the token goes on the url, offered with the atrium.v1 subprotocol', async () => {
  const { Fake, made } = fakeSocket(() => null);
  const c = await connect('ws://h/ws', { WebSocket: Fake, token: async () => 'a.b.c' });
  assert.equal(made[0].url, 'ws://h/ws?token=a.b.c');
  assert.deepEqual(made[0].protocols, ['atrium.v1']);
  assert.equal(c.id, 'c7');
  assert.equal(c.session, 's1');
  assert.equal(c.status, 'open');
  await c.close();
});

test('lines of one message are handled in order: a room exists for the event after its join reply', async () => {
  const { Fake } = fakeSocket((msg) => {
    if (msg.op === 'join') {
      return [
        { op: 'reply', ref: msg.ref, ok: true, result: { room: msg.room, seq: 3, state: { n: 1 } } },
        { op: 'event', room: msg.room, event: 'hello', data: { x: 1 }, from: 'c9' },
        { op: 'patch', room: msg.room, seq: 4, ops: [{ op: 'replace', path: '/n', value: 2 }] },
        '',
      ];
    }
    return null;
  });
  const c = await connect('ws://h/ws', { WebSocket: Fake });
  // The Room is registered while the reply line is handled, so the patch on the next line
  // of the same message already finds it: join resolves with the patched state.
  const room = await c.join('r:1');
  assert.equal(room.seq, 4, 'the patch in the same message as the reply was applied');
  assert.deepEqual(room.state, { n: 2 });
  await c.close();
});

test('a reply error becomes an AtriumError with the server code and message', async () => {
  const { Fake } = fakeSocket((msg) => [{ op: 'reply', ref: msg.ref, ok: false, error: { code: 'join_rejected', message: 'wrong password' } }]);
  const c = await connect('ws://h/ws', { WebSocket: Fake });
  await assert.rejects(c.join('chat:x', { password: 'no' }), (e) => e instanceof AtriumError && e.code === 'join_rejected' && e.message === 'wrong password');
  await c.close();
});

test('AtriumError.where is the reply error\'s where, undefined when absent', async () => {
  const { Fake } = fakeSocket((msg) => {
    if (msg.op === 'call') {
      return [{ op: 'reply', ref: msg.ref, ok: false, error: { code: 'not_your_turn', message: "It is X's turn", where: 'rooms/ttt.lua:54' } }];
    }
    if (msg.op === 'join') return [{ op: 'reply', ref: msg.ref, ok: true, result: { room: msg.room, seq: 0, state: {} } }];
    return [{ op: 'reply', ref: msg.ref, ok: false, error: { code: 'not_member', message: 'not a member' } }];
  });
  const c = await connect('ws://h/ws', { WebSocket: Fake });
  const room = await c.join('ttt:1');
  await assert.rejects(room.call('move', 4), (e) => {
    assert.ok(e instanceof AtriumError);
    assert.equal(e.code, 'not_your_turn');
    assert.equal(e.message, "It is X's turn");
    assert.equal(e.where, 'rooms/ttt.lua:54');
    return true;
  });
  await assert.rejects(c.request('sync', { room: 'x:1' }), (e) => {
    assert.equal(e.code, 'not_member');
    assert.ok('where' in e, 'where is an own property');
    assert.equal(e.where, undefined);
    return true;
  });
  await c.close();
  assert.equal(new AtriumError('closed').where, undefined);
  assert.equal(new AtriumError('script_error', 'boom', { where: 'rooms/a.lua:3' }).where, 'rooms/a.lua:3');
});

test('an error frame carries where too', async () => {
  const { Fake, made } = fakeSocket(() => null);
  const c = await connect('ws://h/ws', { WebSocket: Fake });
  const got = new Promise((resolve) => c.once('error', resolve));
  made[0].push({ op: 'error', error: { code: 'script_error', message: 'boom', where: 'rooms/a.lua:7' } });
  const e = await got;
  assert.equal(e.code, 'script_error');
  assert.equal(e.where, 'rooms/a.lua:7');
  await c.close();
});

test('close() rejects every pending request with closed, and later requests too', async () => {
  const { Fake } = fakeSocket(() => null); // never answers
  const c = await connect('ws://h/ws', { WebSocket: Fake });
  const statuses = [];
  c.on('status', (s) => statuses.push(s));
  const r1 = assert.rejects(c.join('a:1'), { code: 'closed' });
  const r2 = assert.rejects(c.ping(), { code: 'closed' });
  await sleep(5);
  await c.close();
  await r1;
  await r2;
  await assert.rejects(c.join('a:2'), { code: 'closed' });
  assert.deepEqual(statuses, ['closed']);
});

test('a request without a reply times out', async () => {
  const { Fake } = fakeSocket(() => null);
  const c = await connect('ws://h/ws', { WebSocket: Fake, timeout: 50 });
  await assert.rejects(c.ping(), { code: 'timeout' });
  await c.close();
});

test('a connection that never says welcome fails connect', async () => {
  class Silent {
    constructor() { this.sent = []; }
    send() {}
    close(code) { setTimeout(() => this.onclose?.({ code, reason: '' }), 0); }
  }
  const started = Date.now();
  await assert.rejects(connect('ws://h/ws', { WebSocket: Silent, timeout: 100, transports: ['websocket'] }),
    { code: 'connect_failed' });
  assert.ok(Date.now() - started < 2000);
});

test('a drop rejects in-flight requests with disconnected; reconnect rejoins with the same payload', async () => {
  let joins = 0;
  const { Fake, made } = fakeSocket((msg) => {
    if (msg.op === 'join') {
      joins += 1;
      return [{ op: 'reply', ref: msg.ref, ok: true, result: { room: msg.room, seq: 10 * joins, state: { joins } } }];
    }
    if (msg.op === 'resume') return [{ op: 'reply', ref: msg.ref, ok: false, error: { code: 'not_found', message: 'session expired' } }];
    return null; // calls stay unanswered
  });
  const c = new Client('ws://h/ws', { WebSocket: Fake, minReconnectDelay: 5, maxReconnectDelay: 20 });
  await c._start();
  const room = await c.join('r:1', { password: 'pw' });
  const states = [];
  room.on('state', (s) => states.push(s));
  const inflight = room.call('slow');
  const statuses = [];
  c.on('status', (s) => statuses.push(s));
  made[0].drop(1006);
  await assert.rejects(inflight, { code: 'disconnected' });
  const reopened = await new Promise((resolve) => c.on('status', (s) => s === 'open' && resolve(true)));
  assert.ok(reopened);
  assert.deepEqual(statuses, ['reconnecting', 'open']);
  const second = made[1].sent;
  assert.equal(second[0].op, 'resume');
  assert.equal(second[0].session, 's1');
  assert.deepEqual(second[0].rooms, { 'r:1': { seq: 10 } }, 'no epoch: the fake sent none');
  assert.deepEqual(second[1], { op: 'join', room: 'r:1', payload: { password: 'pw' }, ref: second[1].ref });
  assert.equal(c.room('r:1'), room, 'the same Room object');
  assert.deepEqual(room.state, { joins: 2 });
  assert.deepEqual(states, [{ joins: 2 }]);
  await c.close();
});

test('a connection that stops answering pings is dropped and replaced', async () => {
  let silent = true;
  const { Fake, made } = fakeSocket((msg) => {
    if (msg.op === 'ping' && !silent) return [{ op: 'reply', ref: msg.ref, ok: true, result: 'pong' }];
    return null;
  }, 40);
  const c = new Client('ws://h/ws', { WebSocket: Fake, timeout: 60, minReconnectDelay: 5, maxReconnectDelay: 10 });
  await c._start();
  const statuses = [];
  c.on('status', (s) => statuses.push(s));
  await new Promise((resolve) => c.on('status', (s) => s === 'reconnecting' && resolve()));
  silent = false;
  await new Promise((resolve) => c.on('status', (s) => s === 'open' && resolve()));
  assert.ok(made[0].sent.some((m) => m.op === 'ping'), 'it pinged the quiet connection');
  assert.equal(made[0].closed?.code, 4000, 'and closed it as dead (not a clean close)');
  assert.deepEqual(statuses, ['reconnecting', 'open']);
  await c.close();
});

// ---- seats and resume (docs/protocol.md "Seats and resume") ------------------------------

const RESUME_OPTS = { minReconnectDelay: 5, maxReconnectDelay: 20, timeout: 2000 };
const second = (n) => (n === 0 ? { session: 's1', client: 'c7' } : { session: `s${n + 1}`, client: `c${n + 20}` });
const until = async (fn, what) => {
  for (let i = 0; i < 300; i++) {
    if (fn()) return;
    await sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
};

test('epoch comes with join, joined, sync and state frames; a state of another epoch replaces whatever its seq', async () => {
  const { Fake, made } = fakeSocket((msg) => {
    if (msg.op === 'join') return [{ op: 'reply', ref: msg.ref, ok: true, result: { room: msg.room, epoch: 'e1', seq: 5, state: { n: 5 } } }];
    if (msg.op === 'sync') return [{ op: 'reply', ref: msg.ref, ok: true, result: { room: msg.room, epoch: 'e3', seq: 2, state: { n: 'synced' } } }];
    return null;
  });
  const c = await connect('ws://h/ws', { WebSocket: Fake });
  const room = await c.join('r:1');
  assert.equal(room.epoch, 'e1');
  assert.equal(room.recovered, undefined, 'undefined before any reconnect');
  const states = [];
  room.on('state', (s, ops) => states.push([structuredClone(s), ops]));
  made[0].push({ op: 'state', room: 'r:1', epoch: 'e2', seq: 1, state: { n: 'new' } });
  assert.equal(room.epoch, 'e2');
  assert.equal(room.seq, 1);
  assert.deepEqual(room.state, { n: 'new' });
  made[0].push({ op: 'patch', room: 'r:1', seq: 2, ops: [{ op: 'replace', path: '/n', value: 'two' }] });
  assert.deepEqual(room.state, { n: 'two' }, 'patches go on from the new epoch\'s seq');
  assert.deepEqual(await room.sync(), { n: 'synced' });
  assert.equal(room.epoch, 'e3');
  const placed = new Promise((resolve) => c.once('joined', resolve));
  made[0].push({ op: 'joined', room: 'vip:1', epoch: 'e9', seq: 4, state: {} });
  const vip = await placed;
  assert.equal(vip.epoch, 'e9');
  assert.equal(vip.seq, 4);
  assert.deepEqual(states.map(([, ops]) => ops), [undefined, [{ op: 'replace', path: '/n', value: 'two' }], undefined]);
  await c.close();
});

test('resume: frames before the reply are applied; the old session and client id stay; each room resumes, leaves or rejoins', async () => {
  const log = [];
  const { Fake, made } = fakeSocket((msg, sock) => {
    const first = sock === made[0];
    if (msg.op === 'join') {
      return [{ op: 'reply', ref: msg.ref, ok: true, result: { room: msg.room, epoch: first ? 'e1' : 'e2', seq: first ? 10 : 100, state: { n: first ? 0 : 'rejoined' } } }];
    }
    if (msg.op === 'resume') {
      return [
        { op: 'patch', room: 'a:1', seq: 11, ops: [{ op: 'replace', path: '/n', value: 11 }] },
        { op: 'patch', room: 'a:1', seq: 12, ops: [{ op: 'replace', path: '/n', value: 12 }] },
        { op: 'state', room: 's:1', epoch: 'e9', seq: 3, state: { fresh: true } },
        { op: 'joined', room: 'p:1', epoch: 'e5', seq: 7, state: { placed: true } },
        {
          op: 'reply', ref: msg.ref, ok: true, result: {
            client: 'c7',
            rooms: {
              'a:1': { recovered: true, epoch: 'e1', seq: 12 },
              's:1': { recovered: false, epoch: 'e9', seq: 3 },
              'k:1': { left: 'kicked' },
              'x:1': { left: 'closed' },
              'm:1': { left: 'not_member' },
              // g:1 is missing: rejoined
            },
          },
        },
        { op: 'patch', room: 'a:1', seq: 13, ops: [{ op: 'replace', path: '/n', value: 13 }] }, // live, after the reply
      ];
    }
    return null;
  }, 60000, second);
  const c = new Client('ws://h/ws', { WebSocket: Fake, ...RESUME_OPTS });
  await c._start();
  assert.equal(c.session, 's1');
  const rooms = {};
  for (const id of ['a:1', 's:1', 'k:1', 'x:1', 'm:1', 'g:1']) {
    const room = await c.join(id, { who: id });
    rooms[id] = room;
    room.on('state', (s, ops) => log.push(`${id} state ${ops ? room.seq : 'whole'}`));
    room.on('resumed', (r) => log.push(`${id} resumed ${JSON.stringify(r)}`));
    room.on('left', (reason) => log.push(`${id} left ${reason}`));
  }
  c.on('joined', (room) => log.push(`joined ${room.id} ${room.epoch}`));
  c.on('status', (s) => log.push(`status ${s}`));
  made[0].drop(1006);
  await until(() => c.status === 'open', 'open');

  const sent = made[1].sent;
  assert.deepEqual(sent[0], {
    op: 'resume', ref: sent[0].ref, session: 's1',
    rooms: Object.fromEntries(Object.keys(rooms).map((id) => [id, { seq: 10, epoch: 'e1' }])),
  }, 'resume first, with seq and epoch of every room');
  assert.deepEqual(sent.slice(1).map((m) => [m.op, m.room, m.payload]), [['join', 'm:1', { who: 'm:1' }], ['join', 'g:1', { who: 'g:1' }]],
    'only not_member and unlisted rooms are rejoined');
  assert.equal(c.id, 'c7', 'the resumed client id');
  assert.equal(c.session, 's1', 'the old session: the new welcome\'s (s2) is void');
  assert.deepEqual(rooms['a:1'].state, { n: 13 });
  assert.equal(rooms['a:1'].recovered, true);
  assert.deepEqual(rooms['s:1'].state, { fresh: true });
  assert.equal(rooms['s:1'].epoch, 'e9');
  assert.equal(rooms['s:1'].recovered, false);
  assert.equal(c.room('k:1'), undefined);
  assert.equal(c.room('x:1'), undefined);
  for (const id of ['m:1', 'g:1']) {
    assert.equal(c.room(id), rooms[id], 'the same Room object');
    assert.deepEqual(rooms[id].state, { n: 'rejoined' });
    assert.equal(rooms[id].epoch, 'e2');
    assert.equal(rooms[id].recovered, false);
  }
  assert.deepEqual(c.room('p:1')?.state, { placed: true });
  assert.deepEqual(log, [
    'status reconnecting',
    'a:1 state 11',
    'a:1 state 12',
    's:1 state whole',
    'joined p:1 e5',
    'a:1 resumed {"recovered":true}',
    's:1 resumed {"recovered":false}',
    'k:1 left kicked',
    'x:1 left closed',
    'a:1 state 13',
    'm:1 state whole',
    'g:1 state whole',
    'status open',
  ]);
  await c.close();
});

test('resume refused (not_found, bad_request, not_allowed): everything is rejoined under the new session', async () => {
  for (const code of ['not_found', 'bad_request', 'not_allowed']) {
    const { Fake, made } = fakeSocket((msg) => {
      if (msg.op === 'join') return [{ op: 'reply', ref: msg.ref, ok: true, result: { room: msg.room, epoch: 'e1', seq: 1, state: {} } }];
      if (msg.op === 'resume') return [{ op: 'reply', ref: msg.ref, ok: false, error: { code, message: code } }];
      return null;
    }, 60000, second);
    const c = new Client('ws://h/ws', { WebSocket: Fake, ...RESUME_OPTS });
    await c._start();
    const room = await c.join('r:1');
    let resumed = 0;
    room.on('resumed', () => resumed++);
    made[0].drop(1006);
    await until(() => c.status === 'open', 'open');
    assert.deepEqual(made[1].sent.map((m) => m.op), ['resume', 'join'], code);
    assert.equal(c.id, 'c21', `${code}: the new connection's client id`);
    assert.equal(c.session, 's2', `${code}: the new connection's session`);
    assert.equal(room.recovered, false);
    assert.equal(resumed, 0, 'no resumed event for a rejoin');
    await c.close();
  }
});

test('close 4002 (session resumed elsewhere) is final: no reconnect, rooms and watches fire left(replaced)', async () => {
  const { Fake, made } = fakeSocket((msg) => {
    if (msg.op === 'join' || msg.op === 'watch') return [{ op: 'reply', ref: msg.ref, ok: true, result: { room: msg.room, epoch: 'e1', seq: 1, state: {} } }];
    return null;
  });
  const c = new Client('ws://h/ws', { WebSocket: Fake, ...RESUME_OPTS });
  await c._start();
  const room = await c.join('r:1');
  const w = await c.watch('w:1');
  const events = [];
  room.on('left', (...a) => events.push(['room', ...a]));
  w.on('left', (...a) => events.push(['watch', ...a]));
  c.on('status', (s) => events.push(['status', s]));
  const inflight = room.call('slow');
  made[0].drop(4002, 'session resumed elsewhere');
  await assert.rejects(inflight, { code: 'disconnected' });
  await sleep(60);
  assert.equal(made.length, 1, 'no reconnect');
  assert.equal(c.status, 'closed');
  assert.deepEqual(events, [
    ['status', 'closed'],
    ['room', 'replaced', 'session resumed elsewhere'],
    ['watch', 'replaced', 'session resumed elsewhere'],
  ]);
  assert.equal(c.rooms.size, 0);
  await assert.rejects(c.join('r:2'), { code: 'closed' });
  await c.close();
});

test('a room left while reconnecting is not taken back: its seat from the resume is let go', async () => {
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  const { Fake, made } = fakeSocket((msg, sock) => {
    if (msg.op === 'join') return [{ op: 'reply', ref: msg.ref, ok: true, result: { room: msg.room, epoch: 'e1', seq: 1, state: {} } }];
    if (msg.op === 'leave') return [{ op: 'reply', ref: msg.ref, ok: true }];
    if (msg.op === 'resume') {
      // the resume waits until the test has left b:1 (after the request listed it)
      gate.then(() => sock.push(
        { op: 'joined', room: 'c:1', epoch: 'e1', seq: 1, state: {} },
        { op: 'reply', ref: msg.ref, ok: true, result: { client: 'c7', rooms: { 'b:1': { recovered: true, epoch: 'e1', seq: 1 } } } },
      ));
    }
    return null;
  }, 60000, second);
  const c = new Client('ws://h/ws', { WebSocket: Fake, ...RESUME_OPTS });
  await c._start();
  await c.join('b:1');
  const cRoom = await c.join('c:1');
  const joined = [];
  c.on('joined', (r) => joined.push(r.id));
  made[0].drop(1006);
  await cRoom.leave(); // offline: at once, before the resume goes out
  assert.equal(c.room('c:1'), undefined);
  await until(() => made[1]?.sent.length === 1, 'the resume');
  assert.deepEqual(Object.keys(made[1].sent[0].rooms), ['b:1']);
  await c.room('b:1').leave(); // while the resume is on its way
  release();
  await until(() => c.status === 'open', 'open');
  await until(() => made[1].sent.filter((m) => m.op === 'leave').length === 2, 'two leaves');
  assert.deepEqual(made[1].sent.map((m) => [m.op, m.room]), [['resume', undefined], ['leave', 'c:1'], ['leave', 'b:1']]);
  assert.deepEqual(joined, [], 'no joined event for a room left offline');
  assert.equal(c.rooms.size, 0);
  await c.close();
});

test('the last room left while reconnecting: a resume with no rooms lets its held seat go', async () => {
  const { Fake, made } = fakeSocket((msg) => {
    if (msg.op === 'join') return [{ op: 'reply', ref: msg.ref, ok: true, result: { room: msg.room, epoch: 'e1', seq: 1, state: {} } }];
    if (msg.op === 'leave') return [{ op: 'reply', ref: msg.ref, ok: true }];
    if (msg.op === 'resume') {
      return [
        { op: 'joined', room: 'a:1', epoch: 'e1', seq: 1, state: {} },
        { op: 'reply', ref: msg.ref, ok: true, result: { client: 'c7', rooms: {} } },
      ];
    }
    return null;
  }, 60000, second);
  const c = new Client('ws://h/ws', { WebSocket: Fake, ...RESUME_OPTS });
  await c._start();
  const room = await c.join('a:1');
  made[0].drop(1006);
  await room.leave();
  await until(() => c.status === 'open', 'open');
  await until(() => made[1].sent.length === 2, 'the leave');
  assert.deepEqual(made[1].sent.map((m) => [m.op, m.rooms ?? m.room]), [['resume', {}], ['leave', 'a:1']]);
  assert.equal(c.session, 's1', 'resumed: the old session');
  assert.equal(c.rooms.size, 0);
  await c.close();
});
