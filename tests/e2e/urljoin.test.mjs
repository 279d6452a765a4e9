// Joining on connect (docs/protocol.md "Joining on connect"): /ws?join=ROOM&payload=JSON
// joins right after `welcome`, each result a `joined` frame (or an `error` frame naming the
// room), so a client with no request logic at all is a member.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connect, tempRooms, httpRequest } from './helpers.mjs';

const T = { timeout: 30000 };

const ROOMS = {
  'greet.lua': `
local G = { defaultState = { names = atrium.array() } }
function G:onJoin(ctx)
  if ctx.payload.name == "mallory" then return false, "not you" end
  table.insert(self.state.names, ctx.payload.name or ctx.client)
end
G.actions = {}
function G.actions.count(self, ctx) return #self.state.names end
return G`,
  'staff.lua': `
local S = { defaultState = {}, options = { serverJoinOnly = true } }
return S`,
};

let server;
before(async () => {
  server = await startServer({ rooms: tempRooms(ROOMS) });
});
after(cleanup);

const url = (query) => `${server.url}?${query}`;
const enc = (v) => encodeURIComponent(JSON.stringify(v));

// Resolves with the HTTP status an upgrade was refused with (or 101 when it opened).
async function upgradeStatus(query) {
  try {
    const c = await connect(url(query));
    c.ws.close(1000);
    return 101;
  } catch (e) {
    return e.status ?? String(e);
  }
}

describe('joining on connect', () => {
  it('joins each room of the URL in order, with its payload: joined frames after welcome', T, async () => {
    const c = await connect(url(`join=greet:a&payload=${enc({ name: 'ada' })}&join=greet:b&join=lobby`));
    const a = await c.next((m) => m.op === 'joined' && m.room === 'greet:a');
    assert.deepEqual(a.state, { names: ['ada'] });
    assert.equal(typeof a.epoch, 'string');
    assert.equal(typeof a.seq, 'number');
    const b = await c.next((m) => m.op === 'joined' && m.room === 'greet:b');
    assert.deepEqual(b.state.names, [c.welcome.client]);   // no payload: {}
    await c.next((m) => m.op === 'joined' && m.room === 'lobby');    // untyped rooms too
    const order = c.log.map((m) => m.op + (m.room ? `:${m.room}` : ''));
    assert.deepEqual(order.slice(0, 4), ['welcome', 'joined:greet:a', 'joined:greet:b', 'joined:lobby']);
    // A member like any other: it calls, and others' changes reach it as patches.
    assert.equal(await c.act('greet:a', 'count'), 1);
    const other = await connect(url(`join=greet:a&payload=${enc({ name: 'bob' })}`));
    await other.next((m) => m.op === 'joined');
    const patch = await c.next((m) => m.op === 'patch' && m.room === 'greet:a');
    assert.ok(JSON.stringify(patch.ops).includes('bob'));
  });

  it('a join that fails is an error frame naming the room; the others and the connection go on', T, async () => {
    const c = await connect(url(`join=greet:x&payload=${enc({ name: 'mallory' })}&join=staff:1&join=nope:1&join=greet:y`));
    const rejected = await c.next((m) => m.op === 'error' && m.room === 'greet:x');
    assert.equal(rejected.error.code, 'join_rejected');
    assert.equal(rejected.error.message, 'not you');
    const staff = await c.next((m) => m.op === 'error' && m.room === 'staff:1');
    assert.equal(staff.error.code, 'server_join_only');
    const nope = await c.next((m) => m.op === 'error' && m.room === 'nope:1');
    assert.equal(nope.error.code, 'not_found');
    await c.next((m) => m.op === 'joined' && m.room === 'greet:y');
    assert.equal(await c.act('greet:y', 'count'), 1);
    const room = await httpRequest(server, 'GET', '/api/rooms/greet:x');
    assert.equal(room.status, 404, 'the rejected join left no room behind');
  });

  it('a malformed URL is refused 400 before the upgrade, saying what is wrong', T, async () => {
    assert.equal(await upgradeStatus('join=bad%20room'), 400);
    assert.equal(await upgradeStatus(`payload=${enc({ a: 1 })}`), 400);                  // no join before it
    assert.equal(await upgradeStatus(`join=greet:a&payload=${encodeURIComponent('{oops')}`), 400);
    assert.equal(await upgradeStatus(`join=greet:a&payload=${enc([1, 2])}`), 400);      // not an object
    assert.equal(await upgradeStatus(`join=greet:a&payload=${enc({})}&payload=${enc({})}`), 400);
    const many = Array.from({ length: 33 }, (_, i) => `join=greet:m${i}`).join('&');
    assert.equal(await upgradeStatus(many), 400);
    assert.equal(await upgradeStatus('join=greet:ok'), 101);
    const metrics = await httpRequest(server, 'GET', '/metrics');
    assert.match(metrics.text, /atrium_upgrades_refused_url_total 6/);
  });
});
