// Order: frames a request causes for its own client come before its reply; replies come
// in request order with matching refs (docs/protocol.md "Client to server", and "Order:"
// under "Server to client").
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, uid } from './helpers.mjs';

const T = { timeout: 20000 };

// Index in client.log of the reply with ref, and of the first frame after mark matching pred.
function positions(client, mark, ref, pred) {
  const frames = client.log.slice(mark);
  return {
    reply: frames.findIndex((m) => m.op === 'reply' && m.ref === ref),
    frame: frames.findIndex(pred),
  };
}

describe('ordering', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('sends the events an action emits and sends to its caller before the action reply', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `echo:${uid()}`;
    await a.join(room);
    await b.join(room);
    const mark = a.log.length;
    a.send({ op: 'call', room, method: 'announce', args: ['hi'], ref: 'ann' });
    const reply = await a.next({ op: 'reply', ref: 'ann' });
    assert.equal(reply.ok, true);
    assert.equal(reply.result, 'announced');
    for (const event of ['announced', 'private']) {
      const p = positions(a, mark, 'ann', (m) => m.op === 'event' && m.event === event);
      assert.ok(p.frame >= 0, `${event} arrived`);
      assert.ok(p.frame < p.reply, `${event} came before the reply`);
    }
    await b.next({ op: 'event', event: 'announced' });
  });

  it('sends the event an emit makes the room send back to its sender before the emit reply', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `echo:${uid()}`;
    await a.join(room);
    const mark = a.log.length;
    a.send({ op: 'emit', room, event: 'all', data: { text: 'me too' }, ref: 7 });
    await a.next({ op: 'reply', ref: 7 });
    const p = positions(a, mark, 7, (m) => m.op === 'event' && m.event === 'all');
    assert.ok(p.frame >= 0 && p.frame < p.reply, 'event before reply');
  });

  it('sends left before the reply of the action that kicked its own caller', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `bouncer:${uid()}`;
    await a.join(room);
    await b.join(room);
    const mark = a.log.length;
    a.send({ op: 'call', room, method: 'kick', args: [a.welcome.client, 'self-service'], ref: 'k' });
    const reply = await a.next({ op: 'reply', ref: 'k' });
    assert.equal(reply.ok, true);
    const p = positions(a, mark, 'k', (m) => m.op === 'left' && m.room === room);
    assert.ok(p.frame >= 0 && p.frame < p.reply, 'left before reply');
    assert.equal(a.log.slice(mark)[p.frame].reason, 'kicked');
    assert.equal(a.log.slice(mark)[p.frame].message, 'self-service');
  });

  it('answers a burst of mixed requests in the order they were sent, one reply per ref', T, async () => {
    const [a] = await connectMany(server, 1);
    const echo = `echo:${uid()}`;
    const other = `pubsub-${uid()}`;
    await a.join(echo);
    const requests = [
      { op: 'ping', ref: 1 },
      { op: 'ping', ref: '1' },
      { op: 'call', room: echo, method: 'announce', args: ['x'], ref: 2 },
      { op: 'call', room: echo, method: 'nope', args: [], ref: 'bad-method' },
      { op: 'join', room: other, ref: 3.5 },
      { op: 'emit', room: other, event: 'e', data: 1, ref: -4 },
      { op: 'sync', room: echo, ref: 'sync' },
      { op: 'join', room: other, ref: 0 },
      { op: 'dance', ref: 'unknown' },
      { op: 'join', ref: 'no-room' },
      { op: 'leave', room: other, ref: 9 },
      { op: 'emit', room: other, event: 'e', ref: 10 },
      { op: 'ping', ref: 'last' },
    ];
    const mark = a.log.length;
    for (const r of requests) a.send(r);
    await a.next({ op: 'reply', ref: 'last' });
    const replies = a.log.slice(mark).filter((m) => m.op === 'reply' && requests.some((r) => r.ref === m.ref));
    assert.deepEqual(replies.map((m) => m.ref), requests.map((r) => r.ref));
    const byRef = new Map(replies.map((m) => [m.ref, m]));
    assert.equal(byRef.get(1).result, 'pong');
    assert.equal(byRef.get('1').result, 'pong');
    assert.equal(byRef.get(2).result, 'announced');
    assert.equal(byRef.get('bad-method').error.code, 'unknown_method');
    assert.equal(byRef.get(3.5).ok, true);
    assert.equal(byRef.get(-4).ok, true);
    assert.equal(byRef.get('sync').result.room, echo);
    assert.equal(byRef.get(0).error.code, 'already_member');
    assert.equal(byRef.get('unknown').error.code, 'unknown_op');
    assert.equal(byRef.get('no-room').error.code, 'bad_request');
    assert.equal(byRef.get(9).ok, true);
    assert.equal(byRef.get(10).error.code, 'not_member');
  });

  it('keeps replies in order across many pipelined calls that change state', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `batch:${uid()}`;
    await a.join(room);
    const n = 50;
    for (let i = 0; i < n; i++) a.send({ op: 'call', room, method: 'inc', args: [], ref: `inc-${i}` });
    await a.next({ op: 'reply', ref: `inc-${n - 1}` });
    const replies = a.log.filter((m) => m.op === 'reply' && String(m.ref).startsWith('inc-'));
    assert.deepEqual(replies.map((m) => m.ref), Array.from({ length: n }, (_, i) => `inc-${i}`));
    assert.deepEqual(replies.map((m) => m.result), Array.from({ length: n }, (_, i) => i + 1));
  });
});
