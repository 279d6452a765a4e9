// The HTTP fallback (docs/protocol.md "HTTP fallback"): the server's frames as a
// Server-Sent Events stream (GET /ws/events), requests as POSTs (POST /ws/send?stream=ID).
// Rooms cannot tell such a member from a WebSocket one; a cut stream is a drop that a
// resume on the next stream recovers from, nothing lost, nothing twice.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import crypto from 'node:crypto';
import { startServer, cleanup, connect, tempRooms, httpRequest } from './helpers.mjs';

const T = { timeout: 30000 };
const SECRET = 'a-test-secret-of-thirty-two-bytes!!';

const ROOMS = {
  'tally.lua': `
local T = { defaultState = { n = 0, log = atrium.array() }, options = { reconnectGrace = 30 } }
T.actions = {}
function T.actions.add(self, ctx, k)
  self.state.n = self.state.n + 1
  table.insert(self.state.log, k)
  self:emit("added", { k = k, by = ctx.client })
  return self.state.n
end
function T:onJoin(ctx) if ctx.payload.no then return false, "no" end end
return T`,
};

let server;
let guarded;
before(async () => {
  const rooms = tempRooms(ROOMS);
  server = await startServer({ rooms, args: ['--heartbeat-ms', '1000'] });
  guarded = await startServer({ rooms, args: ['--jwt-secret', SECRET, '--require-auth', '--allowed-origins', 'https://ok.example'] });
});
after(cleanup);

const origin = (s) => s.origin;

// An event stream: every `data:` frame parsed into `frames`, `comments` counted, the first
// `event: stream` kept as `stream` ({id, send}).
function openStream(s, query = '', headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${origin(s)}/ws/events${query}`, { headers, agent: false }, (res) => {
      const st = { res, req, status: res.statusCode, headers: res.headers, frames: [], comments: 0, waiters: [], ended: false, body: '' };
      if (res.statusCode !== 200) {
        res.setEncoding('utf8');
        res.on('data', (d) => { st.body += d; });
        res.on('end', () => resolve(st));
        return;
      }
      let buf = '';
      let event = 'message';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          event = 'message';
          let data = null;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) st.comments += 1;
            else if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data = line.slice(6);
          }
          if (data === null) continue;
          const msg = JSON.parse(data);
          if (event === 'stream') {
            st.stream = msg;
            resolve(st);
            continue;
          }
          st.frames.push(msg);
          for (const w of st.waiters.splice(0)) {
            if (w.match(msg)) w.resolve(msg);
            else st.waiters.push(w);
          }
        }
      });
      res.on('end', () => { st.ended = true; });
      res.on('error', () => { st.ended = true; });
    });
    req.on('error', reject);
  }).then((st) => {
    st.next = (pred, ms = 4000) => {
      const found = st.frames.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        st.waiters.push({ match: pred, resolve });
        setTimeout(() => reject(new Error(`no frame within ${ms} ms; got ${JSON.stringify(st.frames).slice(0, 500)}`)), ms);
      });
    };
    st.post = (...msgs) => httpRequest(server, 'POST', st.stream.send, msgs.map((m) => JSON.stringify(m)).join('\n'),
      { 'content-type': 'text/plain' });
    st.cut = () => st.req.destroy();
    return st;
  });
}

describe('the HTTP fallback', () => {
  it('streams welcome and URL joins; POSTed requests are answered on the stream', T, async () => {
    const st = await openStream(server, '?join=tally:a');
    assert.equal(st.headers['content-type'], 'text/event-stream');
    assert.equal(st.headers['cache-control'], 'no-store');
    assert.match(st.stream.id, /^[0-9a-f]{32}$/);
    const welcome = await st.next((f) => f.op === 'welcome');
    await st.next((f) => f.op === 'joined' && f.room === 'tally:a');
    const r = await st.post({ op: 'call', room: 'tally:a', method: 'add', args: ['x'], ref: 1 }, { op: 'ping', ref: 2 });
    assert.equal(r.status, 200);
    assert.equal((await st.next((f) => f.ref === 1)).result, 1);
    assert.equal((await st.next((f) => f.ref === 2)).result, 'pong');
    const ev = await st.next((f) => f.op === 'event');
    assert.deepEqual(ev.data, { k: 'x', by: welcome.client });
    await st.next((f) => f.op === 'patch' && f.room === 'tally:a');
    st.cut();
  });

  it('a WebSocket member and a stream member of one room see the same frames', T, async () => {
    const ws = await connect(server.url);
    await ws.request({ op: 'join', room: 'tally:b' });
    const st = await openStream(server, '?join=tally:b');
    await st.next((f) => f.op === 'joined');
    await ws.request({ op: 'call', room: 'tally:b', method: 'add', args: ['from-ws'] });
    const atWs = await ws.next((m) => m.op === 'patch' && m.room === 'tally:b');
    const atSt = await st.next((f) => f.op === 'patch' && f.room === 'tally:b');
    assert.deepEqual(atSt, JSON.parse(atWs.$line));
    await st.post({ op: 'call', room: 'tally:b', method: 'add', args: ['from-sse'], ref: 7 });
    const ev = await ws.next((m) => m.op === 'event' && m.data.k === 'from-sse');
    assert.equal(ev.data.by, st.frames[0].client);
    st.cut();
  });

  it('a cut stream is a drop: a resume on the next stream gets back the seat and exactly what it missed', T, async () => {
    const st = await openStream(server, '?join=tally:c');
    const welcome = await st.next((f) => f.op === 'welcome');
    const joined = await st.next((f) => f.op === 'joined');
    await st.post({ op: 'call', room: 'tally:c', method: 'add', args: ['a'], ref: 1 });
    const p1 = await st.next((f) => f.op === 'patch');
    st.cut();
    // While it is away, another member changes the room twice.
    const other = await connect(server.url);
    await other.request({ op: 'join', room: 'tally:c' });
    await other.request({ op: 'call', room: 'tally:c', method: 'add', args: ['b'] });
    await other.next((m) => m.op === 'patch' && m.seq === p1.seq + 1);
    await other.request({ op: 'call', room: 'tally:c', method: 'add', args: ['c'] });
    await other.next((m) => m.op === 'patch' && m.seq === p1.seq + 2);
    const again = await openStream(server);
    await again.next((f) => f.op === 'welcome');
    await again.post({ op: 'resume', session: welcome.session, rooms: { 'tally:c': { seq: p1.seq, epoch: joined.epoch } }, ref: 1 });
    const reply = await again.next((f) => f.ref === 1);
    assert.equal(reply.ok, true, JSON.stringify(reply));
    const patches = again.frames.filter((f) => f.op === 'patch' && f.room === 'tally:c');
    assert.deepEqual(patches.map((p) => p.seq), [p1.seq + 1, p1.seq + 2]);   // each once, in order
    await again.post({ op: 'call', room: 'tally:c', method: 'add', args: ['d'], ref: 2 });
    assert.equal((await again.next((f) => f.ref === 2)).result, 4);
    again.cut();
  });

  it('a silent stream gets heartbeat comments', T, async () => {
    const st = await openStream(server);
    await st.next((f) => f.op === 'welcome');
    const deadline = Date.now() + 5000;
    while (st.comments < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(st.comments >= 1, 'no comment within 5 s at --heartbeat-ms 1000');
    st.cut();
  });

  it('the same admission as /ws: token, origin, URL; POSTs to no stream are 404', T, async () => {
    assert.equal((await openStream(guarded)).status, 401);
    const b64 = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
    const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'ada', exp: Math.floor(Date.now() / 1000) + 600 })}`;
    const token = `${body}.${crypto.createHmac('sha256', SECRET).update(body).digest('base64url')}`;
    assert.equal((await openStream(guarded, `?token=${token}`, { origin: 'https://evil.example' })).status, 403);
    const st = await openStream(guarded, `?token=${token}`, { origin: 'https://ok.example' });
    assert.equal((await st.next((f) => f.op === 'welcome')).userId, 'ada');
    st.cut();
    assert.equal((await openStream(server, '?join=bad%20id')).status, 400);
    const none = await httpRequest(server, 'POST', '/ws/send?stream=0123', '{"op":"ping"}');
    assert.equal(none.status, 404);
    assert.equal((await httpRequest(server, 'GET', '/ws/send')).status, 405);
    const metrics = await httpRequest(server, 'GET', '/metrics');
    assert.match(metrics.text, /atrium_sse_streams_total [1-9]/);
  });
});
