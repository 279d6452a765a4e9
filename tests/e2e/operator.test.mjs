// What a room author and an operator see (issue "a room author's first hour"): errors a
// player can be shown ({code, message, where}), the operator routes (members, kick, close),
// what a watcher gets (events and faults), and the engine's own files under /_atrium/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, cleanup, connectMany, uid, tempRooms, lineOf, assertScriptError,
} from './helpers.mjs';

const T = { timeout: 20000 };

// Each action fails in one way; the markers name the lines (lineOf).
const GAME = `local Game = { defaultState = { turn = "X", n = 0 } }
Game.actions = {}
function Game.actions.move(self, ctx)
  self.state.n = self.state.n + 1
  error({ code = "not_your_turn", message = "It is " .. self.state.turn .. "'s turn" }) -- game:coded
end
function Game.actions.say(self, ctx) error("plain words") end -- game:text
function Game.actions.full(self, ctx) error({ code = "room_full", message = "no seat" }) end -- game:known
function Game.actions.badCode(self, ctx) error({ code = "Not Valid!", message = "m" }) end -- game:badcode
function Game.actions.long(self, ctx) error({ code = string.rep("a", 65), message = "m" }) end
function Game.actions.bare(self, ctx) error({ code = "just_code" }) end
function Game.actions.placed(self, ctx) error({ code = "here", message = "m", where = "my/own.lua:7" }) end
function Game.actions.nothing(self, ctx) error() end -- game:nil
function Game.actions.spin(self, ctx)
  while true do end -- game:spin
end
function Game.actions.shout(self, ctx, text) self:emit("shout", { text = text }) end
function Game:onLeave(ctx) self.state.lastLeave = ctx.reason .. ":" .. ctx.client end
function Game:onDestroy() end
function Game:kept() return self.state end
return Game
`;

function assertError(res, status, code) {
  assert.equal(res.status, status, `${res.status} ${res.text}`);
  assert.equal(res.json?.error?.code, code, res.text);
}

describe('errors a player can be shown', () => {
  let server;
  let file;
  before(async () => {
    const dir = tempRooms({ 'game.lua': GAME });
    file = path.join(dir, 'game.lua');
    server = await startServer({ rooms: dir });
  });
  after(cleanup);

  it('gives error({code, message}) exactly, with where, and rolls the call back', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `game:${uid()}`;
    await a.join(room);
    const err = await a.fails({ op: 'call', room, method: 'move', args: [] }, 'not_your_turn');
    assert.equal(err.message, "It is X's turn");
    assertScriptError(err, file, lineOf(file, 'game:coded'));
    assert.deepEqual(Object.keys(err).sort(), ['code', 'message', 'where']);
    assert.equal((await a.sync(room)).state.n, 0, 'the failed call changed nothing');
  });

  it('gives error("text") as message "text" with the position in where only', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `game:${uid()}`;
    await a.join(room);
    const err = await a.fails({ op: 'call', room, method: 'say', args: [] }, 'script_error');
    assert.equal(err.message, 'plain words');
    assertScriptError(err, file, lineOf(file, 'game:text'));
  });

  it('takes a protocol code as that code, and an invalid one as script_error', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `game:${uid()}`;
    await a.join(room);
    assert.equal((await a.fails({ op: 'call', room, method: 'full', args: [] }, 'room_full')).message, 'no seat');
    assert.equal((await a.fails({ op: 'call', room, method: 'badCode', args: [] }, 'script_error')).message, 'm');
    await a.fails({ op: 'call', room, method: 'long', args: [] }, 'script_error');
    assert.equal((await a.fails({ op: 'call', room, method: 'bare', args: [] }, 'just_code')).message, 'just_code');
    const placed = await a.fails({ op: 'call', room, method: 'placed', args: [] }, 'here');
    assert.equal(placed.where, 'my/own.lua:7');
    const nothing = await a.fails({ op: 'call', room, method: 'nothing', args: [] }, 'script_error');
    assert.match(nothing.message, /error object is a nil value/);
    assertScriptError(nothing, file, lineOf(file, 'game:nil'));
  });

  it('names the action and the line of a budget stop', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `game:${uid()}`;
    await a.join(room);
    const err = await a.fails({ op: 'call', room, method: 'spin', args: [] }, 'budget_exceeded', 5000);
    assert.match(err.message, /^action 'spin' ran past its CPU budget \(\d+ ms\)$/);
    assertScriptError(err, file, lineOf(file, 'game:spin'));
    assert.match(server.stderr(), /hook_failed room=\S+ action=spin code=budget_exceeded where=\S+game\.lua:\d+/);
  });

  it('logs the path as given, with the traceback', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `game:${uid()}`;
    await a.join(room);
    await a.fails({ op: 'call', room, method: 'move', args: [] }, 'not_your_turn');
    assert.ok(server.stderr().includes(`where=${file}:${lineOf(file, 'game:coded')}`), server.stderr().slice(-2000));
    assert.match(server.stderr(), /stack traceback/);
  });
});

describe('operator routes and watchers', () => {
  let server;
  const TOKEN = 'op-secret';
  const auth = { authorization: `Bearer ${TOKEN}` };
  before(async () => {
    server = await startServer({ rooms: tempRooms({ 'game.lua': GAME }), args: ['--admin-token', TOKEN] });
  });
  after(cleanup);

  it('lists members with client, userId and joinedAt', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `game:${uid()}`;
    const before = Date.now();
    await a.join(room);
    await b.join(room);
    const res = await server.http('GET', `/api/rooms/${room}/members`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.members.map((m) => m.client), [a.welcome.client, b.welcome.client]);
    for (const m of res.json.members) {
      assert.equal(m.userId, null);
      assert.ok(m.joinedAt >= before - 1000 && m.joinedAt <= Date.now() + 1000, `joinedAt ${m.joinedAt}`);
    }
    assertError(await server.http('GET', `/api/rooms/game:${uid()}/members`), 404, 'not_found');
    assertError(await server.http('POST', `/api/rooms/${room}/members`, {}, auth), 405, 'bad_request');
  });

  it('kicks a member: left reason kicked with the message, onLeave sees kicked', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const room = `game:${uid()}`;
    await a.join(room);
    await b.join(room);
    assertError(await server.http('POST', `/api/rooms/${room}/kick`, { client: b.welcome.client }), 401, 'unauthorized');
    const res = await server.http('POST', `/api/rooms/${room}/kick`, { client: b.welcome.client, reason: 'be nice' }, auth);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { ok: true });
    const left = await b.next((m) => m.op === 'left' && m.room === room);
    assert.equal(left.reason, 'kicked');
    assert.equal(left.message, 'be nice');
    await a.until(() => a.view(room)?.state?.lastLeave === `kicked:${b.welcome.client}`);
    assertError(await server.http('POST', `/api/rooms/${room}/kick`, { client: b.welcome.client }, auth), 409, 'not_member');
    assertError(await server.http('POST', `/api/rooms/${room}/kick`, {}, auth), 400, 'bad_request');
    assertError(await server.http('POST', `/api/rooms/${room}/kick`, { client: a.welcome.client, reason: 5 }, auth), 400, 'bad_request');
    assertError(await server.http('POST', `/api/rooms/game:${uid()}/kick`, { client: a.welcome.client }, auth), 404, 'not_found');
  });

  it('closes a room with DELETE: members and watchers get left closed, the room is gone', T, async () => {
    const [a, w] = await connectMany(server, 2);
    const room = `game:${uid()}`;
    await a.join(room);
    await w.ok({ op: 'watch', room, token: TOKEN });
    assertError(await server.http('DELETE', `/api/rooms/${room}`), 401, 'unauthorized');
    const res = await server.http('DELETE', `/api/rooms/${room}`, undefined, auth);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { ok: true });
    assert.equal((await a.next((m) => m.op === 'left' && m.room === room)).reason, 'closed');
    assert.equal((await w.next((m) => m.op === 'left' && m.room === room)).reason, 'closed');
    assertError(await server.http('GET', `/api/rooms/${room}`), 404, 'not_found');
    assertError(await server.http('DELETE', `/api/rooms/${room}`, undefined, auth), 404, 'not_found');
    assertError(await server.http('PUT', `/api/rooms/${room}`, undefined, auth), 405, 'bad_request');
  });

  it('sends a watcher the room\'s events and a fault frame for a script error', T, async () => {
    const [a, w] = await connectMany(server, 2);
    const room = `game:${uid()}`;
    await a.join(room);
    await w.ok({ op: 'watch', room, token: TOKEN });
    await a.act(room, 'shout', 'hello');
    const ev = await w.next((m) => m.op === 'event' && m.room === room);
    assert.equal(ev.event, 'shout');
    assert.deepEqual(ev.data, { text: 'hello' });
    await a.fails({ op: 'call', room, method: 'move', args: [] }, 'not_your_turn');
    const fault = await w.next((m) => m.op === 'fault' && m.room === room);
    assert.equal(fault.in, "action 'move'");
    assert.equal(fault.error.code, 'not_your_turn');
    assert.equal(fault.error.message, "It is X's turn");
    assert.match(fault.error.where, /game\.lua:\d+$/);
    assert.match(fault.traceback, /stack traceback/);
    // The same failure again (an author trying it twice) reaches the watcher again.
    await a.fails({ op: 'call', room, method: 'move', args: [] }, 'not_your_turn');
    await w.next((m) => m.op === 'fault' && m.room === room);  // the first was taken above
    await a.nothing((m) => m.op === 'fault', 150, 0);  // members never get faults
  });

  it('lists each type\'s declared actions and live rooms in /api/status', T, async () => {
    const [a] = await connectMany(server, 1);
    await a.join(`game:${uid()}`);
    const res = await server.http('GET', '/api/status');
    const game = res.json.types.find((t) => t.name === 'game');
    assert.deepEqual(game.actions, ['badCode', 'bare', 'full', 'long', 'move', 'nothing', 'placed', 'say', 'shout', 'spin']);
    assert.ok(game.rooms >= 1);
  });
});

describe('a deleted script', () => {
  after(cleanup);

  it('leaves /api/status once its last room is gone', T, async () => {
    const dir = tempRooms({ 'game.lua': GAME, 'other.lua': 'return { defaultState = {} }' });
    const server = await startServer({ rooms: dir });
    const [a] = await connectMany(server, 1);
    const room = `other:${uid()}`;
    await a.join(room);
    fs.unlinkSync(path.join(dir, 'other.lua'));
    const names = async () => (await server.http('GET', '/api/status')).json.types.map((t) => t.name);
    const deadline = Date.now() + 5000;
    let type;
    while (Date.now() < deadline) {
      type = (await server.http('GET', '/api/status')).json.types.find((t) => t.name === 'other');
      if (type?.error) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(type.error, /deleted/);
    await a.leave(room);
    while (Date.now() < deadline && (await names()).includes('other')) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await names(), ['game']);
  });
});

describe('the engine\'s own files under /_atrium/', () => {
  after(cleanup);

  it('serves the inspector and the client whatever --public is, and redirects the old paths', T, async () => {
    const pub = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR || '/tmp'), 'atrium-pub-'));
    fs.writeFileSync(path.join(pub, 'index.html'), '<!doctype html><title>mine</title>');
    const server = await startServer({ args: ['--public', pub] });
    assert.match((await server.http('GET', '/')).text, /mine/);
    for (const p of ['/_atrium/inspect', '/_atrium/atrium-client.mjs']) {
      const res = await server.http('GET', p);
      assert.equal(res.status, 200, `${p}: ${res.status}`);
    }
    assert.match((await server.http('GET', '/_atrium/atrium-client.mjs')).headers['content-type'], /javascript/);
    for (const [from, to] of [['/inspect', '/_atrium/inspect'], ['/atrium-client.js', '/_atrium/atrium-client.mjs'], ['/_atrium', '/_atrium/inspect']]) {
      const res = await server.http('GET', from);
      assert.equal(res.status, 307, from);
      assert.equal(res.headers.location, to);
    }
    // HEAD answers as GET does, without the body (curl -I).
    for (const p of ['/', '/_atrium/atrium-client.mjs', '/healthz']) {
      const [head, get] = [await server.http('HEAD', p), await server.http('GET', p)];
      assert.equal(head.status, 200, p);
      assert.equal(head.text, '', p);
      assert.equal(Number(head.headers['content-length']), Buffer.byteLength(get.text), p);
      assert.equal(head.headers['content-type'], get.headers['content-type'], p);
    }
    assertError(await server.http('GET', '/_atrium/nothing-here'), 404, 'not_found');
    assertError(await server.http('GET', '/_atrium/../README.md'), 404, 'not_found');
    // A public dir's own /inspect wins over the redirect.
    fs.writeFileSync(path.join(pub, 'inspect.html'), '<!doctype html><title>my inspect</title>');
    assert.match((await server.http('GET', '/inspect')).text, /my inspect/);
  });
});
