// The subprotocol atrium.v1.msgpack (docs/protocol.md "MessagePack"): the same objects as
// atrium.v1, each a MessagePack value, several back to back in one binary message; decoded
// here with @msgpack/msgpack, the library atrium-client uses.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { encode, decodeMulti } from '@msgpack/msgpack';
import { startServer, cleanup, connect, tempRooms, httpRequest } from './helpers.mjs';

const T = { timeout: 30000 };

const ROOMS = {
  'board.lua': `
local B = { defaultState = { cells = atrium.array(), turn = 0, half = 0.5, big = 4294967296, neg = -3 } }
B.actions = {}
function B.actions.put(self, ctx, v)
  table.insert(self.state.cells, v)
  self.state.turn = self.state.turn + 1
  self:emit("put", { by = ctx.client, v = v })
  return #self.state.cells
end
return B`,
};

let server;
before(async () => {
  server = await startServer({ rooms: tempRooms(ROOMS) });
});
after(cleanup);

// A MessagePack client: every value of every binary message in `frames`.
class MsgpackClient {
  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.messages = [];                  // {binary, values}
    this.waiters = [];
    ws.on('message', (data, isBinary) => {
      const values = isBinary ? [...decodeMulti(data)] : [];
      this.messages.push({ binary: isBinary, values, text: isBinary ? null : data.toString() });
      for (const v of values) {
        this.frames.push(v);
        const i = this.waiters.findIndex((w) => w.match(v));
        if (i >= 0) this.waiters.splice(i, 1)[0].resolve(v);
      }
    });
  }
  static open(query = '') {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${server.url}${query}`, 'atrium.v1.msgpack');
      const c = new MsgpackClient(ws);
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
    });
  }
  next(pred, ms = 4000) {
    const found = this.frames.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const w = { match: pred, resolve };
      this.waiters.push(w);
      setTimeout(() => reject(new Error(`no frame within ${ms} ms; got ${JSON.stringify(this.frames).slice(0, 600)}`)), ms);
    });
  }
  send(...objs) {   // several requests in one binary message, back to back
    this.ws.send(Buffer.concat(objs.map((o) => Buffer.from(encode(o)))));
  }
}

describe('atrium.v1.msgpack', () => {
  it('negotiates the subprotocol and speaks MessagePack both ways, several values per message', T, async () => {
    const c = await MsgpackClient.open();
    assert.equal(c.ws.protocol, 'atrium.v1.msgpack');
    const welcome = await c.next((f) => f.op === 'welcome');
    assert.match(welcome.client, /^c\d+$/);
    c.send({ op: 'join', room: 'board:1', ref: 1 }, { op: 'call', room: 'board:1', method: 'put', args: ['x'], ref: 2 });
    const joined = await c.next((f) => f.op === 'reply' && f.ref === 1);
    assert.equal(joined.ok, true);
    // Numbers keep their values: whole ones as integers (past 2^32 too), others as floats.
    assert.deepEqual(joined.result.state, { cells: [], turn: 0, half: 0.5, big: 4294967296, neg: -3 });
    const put = await c.next((f) => f.op === 'reply' && f.ref === 2);
    assert.equal(put.result, 1);
    const ev = await c.next((f) => f.op === 'event' && f.event === 'put');
    assert.deepEqual(ev.data, { by: welcome.client, v: 'x' });
    const patch = await c.next((f) => f.op === 'patch');
    assert.equal(patch.room, 'board:1');
    assert.ok(patch.ops.some((o) => o.path === '/turn' && o.value === 1));
    assert.ok(c.messages.every((m) => m.binary), 'every message is binary');
  });

  it('a JSON member and a MessagePack member of one room get the same frames', T, async () => {
    const json = await connect(server.url);
    const mp = await MsgpackClient.open();
    await mp.next((f) => f.op === 'welcome');
    await json.request({ op: 'join', room: 'board:2' });
    mp.send({ op: 'join', room: 'board:2', ref: 1 });
    await mp.next((f) => f.op === 'reply' && f.ref === 1);
    await json.request({ op: 'call', room: 'board:2', method: 'put', args: [{ deep: [1, 2.5, 'é', null, true] }] });
    const atJson = await json.next((m) => m.op === 'event' && m.event === 'put');
    const atMp = await mp.next((f) => f.op === 'event' && f.event === 'put');
    assert.deepEqual(atMp, JSON.parse(atJson.$line));
    const pJson = await json.next((m) => m.op === 'patch');
    const pMp = await mp.next((f) => f.op === 'patch');
    assert.deepEqual(pMp, JSON.parse(pJson.$line));
  });

  it('joins on connect and text JSON work on a MessagePack connection too', T, async () => {
    const c = await MsgpackClient.open('?join=board:3');
    const joined = await c.next((f) => f.op === 'joined' && f.room === 'board:3');
    assert.deepEqual(joined.state.cells, []);
    c.ws.send(JSON.stringify({ op: 'ping', ref: 9 }));   // text is still JSON
    const pong = await c.next((f) => f.op === 'reply' && f.ref === 9);
    assert.equal(pong.result, 'pong');
  });

  it('what is not MessagePack of a request is answered with an error, and the connection goes on', T, async () => {
    const c = await MsgpackClient.open();
    await c.next((f) => f.op === 'welcome');
    const bad = [
      Buffer.from([0xc1]),                                   // never used
      Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]),           // an array of 4 billion items, cut short
      Buffer.from([0x81, 0x01, 0xa1, 0x61]),                 // {1: "a"}: a map key that is not a string
      Buffer.from(encode({ op: 'ping', data: new Uint8Array([1, 2]) })),   // bin
      Buffer.from([0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]),     // NaN
      Buffer.from([0xa2, 0xff, 0xfe]),                       // a string that is not UTF-8
      Buffer.from(Array.from({ length: 70 }, () => 0x91).concat([0xc0])),   // 70 levels deep
    ];
    for (const b of bad) c.ws.send(b);
    for (let i = 0; i < bad.length; ++i) {
      await c.next((f) => f.op === 'error' && c.frames.filter((x) => x.op === 'error').length > i);
    }
    const errors = c.frames.filter((f) => f.op === 'error');
    assert.equal(errors.length, bad.length);
    for (const e of errors) {
      assert.equal(e.error.code, 'bad_request');
      assert.match(e.error.message, /^MessagePack value at byte \d+: /);
    }
    c.send({ op: 'ping', ref: 3 });
    assert.equal((await c.next((f) => f.ref === 3)).result, 'pong');
    const metrics = await httpRequest(server, 'GET', '/metrics');
    assert.equal(metrics.status, 200);
  });
});
