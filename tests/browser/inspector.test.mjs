// Browser tests of the inspector and playground (/_atrium/inspect): joining and acting on a
// room from the page, the live state, patches, events and script faults, load errors and
// lint warnings next to the version serving, kicking and closing with the admin token, the
// address (hash) followed live, and the engine's pages under any --public.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  repo, T, WAIT, uid, checkPrerequisites, startServer, launchBrowser, newPerson, shot, tempRooms, api, until,
} from './helpers.mjs';

const WIDE = { width: 1440, height: 900 };
const RELOAD_WAIT = 10000; // a save: the watcher's debounce, then the page's 2 s poll

// A room for the tests: an action that patches and emits, one that fails with a code, one
// that fails with plain text, and onEvent echoing what members emit.
const LAB = `-- lab.lua: the inspector tests' room.
local Lab = {
  defaultState = { n = 0, by = false },
}
Lab.actions = {}
function Lab.actions.bump(self, ctx, by)
  self.state.n = self.state.n + (by or 1)
  self.state.by = ctx.client
  self:emit("bumped", { n = self.state.n })
  return self.state.n
end
function Lab.actions.move(self, ctx)
  error({ code = "not_your_turn", message = "It is X's turn" })
end
function Lab.actions.oops(self, ctx)
  error("plain text failure")
end
function Lab:onEvent(event, data, ctx)
  self:emit("echo", { event = event, data = data })
end
return Lab
`;
const lineOf = (source, text) => source.split('\n').findIndex((l) => l.includes(text)) + 1;

// A script the linter warns about: an option with a typo.
const WARNED = `local Warned = {
  defaultState = { ok = true },
  options = { maxMember = 10 },
}
Warned.actions = {}
function Warned.actions.ping(self, ctx) return "pong" end
return Warned
`;

const HOT_V1 = `-- hot.lua: edited while the server runs.
local Hot = { defaultState = { v = 1, n = 0 } }
Hot.actions = {}
function Hot.actions.add(self, ctx) self.state.n = self.state.n + 1; return self.state.n end
return Hot
`;
const HOT_BROKEN = `-- hot.lua: a save with a syntax error.
local Hot = { defaultState = { v = 2, n = 0 } }
Hot.actions = {}
function Hot.actions.add(self, ctx) self.state.n = self.state.n + 1 return self.state.n
return Hot
`;
const HOT_FIXED = `-- hot.lua: fixed.
local Hot = { defaultState = { v = 2, n = 0 } }
Hot.actions = {}
function Hot.actions.add(self, ctx) self.state.n = self.state.n + 10; return self.state.n end
function Hot.actions.reset(self, ctx) self.state.n = 0 end
return Hot
`;

describe('inspector and playground in chromium', () => {
  let server;
  let browser;
  let rooms;
  const contexts = [];

  async function person(viewport = WIDE) {
    const context = await newPerson(browser, viewport);
    contexts.push(context);
    return context;
  }

  async function openInspector(ctx, origin = server.origin, hash = '') {
    const page = await ctx.newPage();
    await page.goto(`${origin}/_atrium/inspect${hash}`);
    await page.locator('#status[data-status="open"]').waitFor();
    return page;
  }

  // Joins `id` from the playground as a new client; resolves with its client id.
  async function playJoin(page, id, payload = '') {
    const before = await page.locator('#play-clients [role="tab"]').count();
    await page.fill('#play-room', id);
    await page.fill('#play-payload', payload);
    await page.click('#play-join');
    await page.locator('#play-clients [role="tab"]').nth(before).waitFor();
    await page.locator('#play-log li[data-verb="join"].ok').first().waitFor();
    return page.locator('#play-clients [role="tab"][aria-selected="true"]').getAttribute('data-client');
  }

  async function playCall(page, method, args = '') {
    await page.fill('#play-method', method);
    await page.fill('#play-args', args);
    const n = await page.locator('#play-log li[data-verb="call"]').count();
    await page.click('#play-call');
    const entry = page.locator('#play-log li[data-verb="call"]').first();
    await until(async () => (await page.locator('#play-log li[data-verb="call"]').count()) > n, 5000, 'the call in the log');
    await entry.locator('.result:not(.pending)').waitFor();
    return entry;
  }

  before(async () => {
    checkPrerequisites();
    rooms = tempRooms({ 'lab.lua': LAB, 'warned.lua': WARNED, 'counter.lua': fs.readFileSync(path.join(repo, 'rooms', 'counter.lua'), 'utf8') });
    server = await startServer([], { rooms: rooms.dir });
    browser = await launchBrowser();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close().catch(() => {});
    await server?.stop();
    rooms?.remove();
  });

  it('the playground joins a room and calls an action; the state and its patch show live', T, async () => {
    const ctx = await person();
    const page = await openInspector(ctx);
    await page.locator('#types tr[data-type="lab"]').waitFor();
    await shot(page, 'inspector-start');
    const id = `lab:${uid('p')}`;
    const me = await playJoin(page, id, '{"name": "Ada"}');
    assert.match(me, /^c\d+$/);

    // The join selects the room: the address, the live state, the members with this client.
    await page.waitForFunction((room) => decodeURIComponent(location.hash) === `#${room}`, id);
    await page.locator('#live', { hasText: 'live' }).waitFor();
    await page.locator('#json', { hasText: '"n": 0' }).waitFor();
    const row = page.locator(`#member-rows tr[data-client="${me}"]`);
    await row.locator('.tag', { hasText: 'playground' }).waitFor();
    await row.locator('td', { hasText: 'anonymous' }).waitFor();

    // The declared actions are offered; one click fills the action.
    await page.locator('#play-actions button', { hasText: 'bump' }).click();
    assert.equal(await page.inputValue('#play-method'), 'bump');
    const entry = await playCall(page, 'bump', '[2]');
    assert.ok(await entry.evaluate((li) => li.classList.contains('ok')), 'the call succeeded');
    assert.equal(await entry.locator('.result .value').textContent(), '2');
    await page.locator('#json', { hasText: '"n": 2' }).waitFor();
    await page.locator('#json', { hasText: `"by": "${me}"` }).waitFor();
    await page.locator('#patch-log li', { hasText: '/n' }).waitFor();
    assert.ok(await page.locator('#json .changed').count() > 0, 'the changed values are marked');
    await page.locator('#seq', { hasText: /^[1-9]/ }).waitFor();
    await shot(page, 'playground-call');

    // Bad JSON: said under the field, nothing sent, gone once fixed.
    const calls = await page.locator('#play-log li[data-verb="call"]').count();
    await page.fill('#play-args', '[2,');
    await page.click('#play-call');
    await page.locator('#play-args-error', { hasText: 'not valid JSON' }).waitFor();
    assert.equal(await page.getAttribute('#play-args', 'aria-invalid'), 'true');
    assert.equal(await page.locator('#play-log li[data-verb="call"]').count(), calls, 'nothing was sent');
    await shot(page, 'playground-bad-json');
    await page.fill('#play-args', '[2]');
    await page.locator('#play-args-error').waitFor({ state: 'hidden' });
    await page.fill('#play-payload', '[1, 2]');
    await page.click('#play-join');
    await page.locator('#play-payload-error', { hasText: 'must be a JSON object' }).waitFor();
    await page.fill('#play-payload', '{"name": ');
    await page.locator('#play-payload-error', { hasText: 'not valid JSON' }).waitFor();

    // A second client is another player: both are members, the first stays a member.
    const other = await playJoin(page, id, '');
    assert.notEqual(other, me);
    await page.locator(`#member-rows tr[data-client="${other}"]`).waitFor();
    await page.locator('#members', { hasText: '2' }).waitFor();
    await playCall(page, 'bump', '5');
    await page.locator('#json', { hasText: '"n": 7' }).waitFor();
    await page.locator('#json', { hasText: `"by": "${other}"` }).waitFor();

    // Leave: the client is gone from the room.
    await page.click('#play-leave');
    await page.locator(`#member-rows tr[data-client="${other}"]`).waitFor({ state: 'detached' });
    const m = await api(server.origin, 'GET', `/api/rooms/${id}/members`);
    assert.deepEqual(m.body.members.map((x) => x.client), [me]);
    assert.deepEqual(ctx.errors, []);
  });

  it('events and script errors show in the event log and the replies, with code, message and where', T, async () => {
    const ctx = await person();
    const page = await openInspector(ctx);
    const id = `lab:${uid('e')}`;
    await playJoin(page, id);
    await page.locator('#live', { hasText: 'live' }).waitFor();

    await playCall(page, 'bump');
    await page.locator('#event-log li[data-kind="event"]', { hasText: 'bumped' }).waitFor();
    await page.locator('#event-log li[data-kind="event"] .data', { hasText: '{"n":1}' }).waitFor();
    await page.locator('#play-log li[data-verb="got event"]', { hasText: 'bumped' }).waitFor();

    await page.fill('#play-event', 'hello');
    await page.fill('#play-data', '{"x": 1}');
    await page.click('#play-emit');
    await page.locator('#play-log li[data-verb="emit"].ok').waitFor();
    assert.equal(await page.locator('#play-log li[data-verb="emit"] .result').textContent(), 'ok');
    await page.locator('#event-log li[data-kind="event"]', { hasText: 'echo' }).waitFor();

    // error({code, message}): exactly that code and message, and where it was raised.
    const moveLine = lineOf(LAB, 'not_your_turn');
    const moved = await playCall(page, 'move');
    assert.ok(await moved.evaluate((li) => li.classList.contains('err')));
    assert.equal(await moved.locator('.code').textContent(), 'not_your_turn');
    assert.equal(await moved.locator('.msg').textContent(), "It is X's turn");
    assert.match(await moved.locator('.where').textContent(), new RegExp(`lab\\.lua:${moveLine}$`));

    // The room's fault frame: red in the event log and over the state.
    const fault = page.locator('#event-log li[data-kind="fault"]').first();
    await fault.waitFor();
    assert.match(await fault.textContent(), /move/);
    assert.equal(await fault.locator('.code').textContent(), 'not_your_turn');
    assert.equal(await fault.locator('.msg').textContent(), "It is X's turn");
    assert.match(await fault.locator('.where').textContent(), new RegExp(`lab\\.lua:${moveLine}$`));
    await page.locator('#fault-strip .code', { hasText: 'not_your_turn' }).waitFor();
    const red = await fault.evaluate((li) => getComputedStyle(li.querySelector('.ev-body')).color);
    assert.equal(red, 'rgb(200, 50, 31)');

    // error("text"): the text as the message, with no file path in it; where says the place.
    const oopsLine = lineOf(LAB, 'plain text failure');
    const oops = await playCall(page, 'oops');
    assert.equal(await oops.locator('.code').textContent(), 'script_error');
    assert.equal(await oops.locator('.msg').textContent(), 'plain text failure');
    assert.match(await oops.locator('.where').textContent(), new RegExp(`lab\\.lua:${oopsLine}$`));
    await page.locator('#event-log li[data-kind="fault"] .msg', { hasText: 'plain text failure' }).waitFor();
    await page.locator('#fault-count', { hasText: '2 faults' }).waitFor();
    // The server may send the Lua traceback with a fault: it is there, folded.
    const traceback = page.locator('#event-log li[data-kind="fault"] details.traceback summary').first();
    if (await traceback.count()) await traceback.click();
    await shot(page, 'inspector-faults');
    assert.deepEqual(ctx.errors, []);
  });

  it('lint warnings show in yellow; a broken save shows next to the version serving, a fixed one clears it', { timeout: 60000 }, async () => {
    const ctx = await person();
    rooms.write('hot.lua', HOT_V1);
    await api(server.origin, 'POST', '/api/reload');
    const page = await openInspector(ctx);

    const warned = page.locator('#types tr[data-type="warned"]');
    await warned.locator('.pill.warn', { hasText: '1 warning' }).waitFor();
    assert.equal(await warned.locator('.pill.good').count(), 0, 'no plain green ok');
    await page.locator('#types tr[data-type-detail="warned"] .type-warnings li', { hasText: "unknown option 'maxMember'" }).waitFor();
    assert.match(await page.locator('#types tr[data-type-detail="warned"] .type-warnings li').first().textContent(), /warned\.lua:3: /);
    await page.locator('#types tr[data-type-detail="lab"] .type-actions', { hasText: 'bump' }).waitFor();

    const hot = page.locator('#types tr[data-type="hot"]');
    await hot.locator('.pill.good', { hasText: 'ok' }).waitFor({ timeout: RELOAD_WAIT });
    const id = `hot:${uid('h')}`;
    await playJoin(page, id);
    await page.locator('#json', { hasText: '"v": 1' }).waitFor();
    // The version counts successful loads (the save and the reload above may both count).
    const v = (await api(server.origin, 'GET', '/api/status')).body.types.find((t) => t.name === 'hot').version;
    await page.locator('#script', { hasText: `hot v${v}` }).waitFor();

    // A save with a syntax error: the version loaded keeps serving, the next one's error shows beside it.
    rooms.write('hot.lua', HOT_BROKEN);
    await hot.locator('.pill.bad', { hasText: 'load error' }).waitFor({ timeout: RELOAD_WAIT });
    const error = page.locator('#types tr[data-type-detail="hot"] .type-error');
    await error.waitFor();
    assert.match(await error.textContent(), new RegExp(`^v${v} serving · v${v + 1} failed to load: .*hot\\.lua:\\d+`));
    assert.equal(await hot.locator('td.num').first().textContent(), `v${v}`);
    await page.locator('#script', { hasText: `v${v + 1} failed` }).waitFor();
    await page.locator('#event-log li.load-error', { hasText: `v${v + 1} failed to load` }).waitFor();
    // ... and the room still runs v1.
    await playCall(page, 'add');
    await page.locator('#json', { hasText: '"n": 1' }).waitFor();
    await shot(page, 'inspector-load-error-live');

    // Fixed: the next version serves, the error is gone.
    rooms.write('hot.lua', HOT_FIXED);
    await hot.locator('.pill.good', { hasText: 'ok' }).waitFor({ timeout: RELOAD_WAIT });
    assert.equal(await hot.locator('td.num').first().textContent(), `v${v + 1}`);
    await error.waitFor({ state: 'detached' });
    await page.locator('#event-log li.reload', { hasText: `v${v + 1} serving` }).waitFor();
    await page.locator('#play-actions button', { hasText: 'reset' }).waitFor();
    await playCall(page, 'add');
    await page.locator('#json', { hasText: '"n": 11' }).waitFor();
    await shot(page, 'inspector-load-fixed');
    assert.deepEqual(ctx.errors, []);
  });

  it('follows the address: a hash change selects another room, and a room not open yet is watched once it opens', T, async () => {
    const ctx = await person();
    const page = await openInspector(ctx);
    const a = `lab:${uid('a')}`;
    const b = `lab:${uid('b')}`;
    await playJoin(page, a);
    await playCall(page, 'bump', '[3]');
    await page.locator('#json', { hasText: '"n": 3' }).waitFor();
    await playJoin(page, b);
    await page.locator('#detail-title', { hasText: b }).waitFor();
    await page.locator('#json', { hasText: '"n": 0' }).waitFor();

    await page.evaluate((id) => { location.hash = id; }, a);
    await page.locator('#detail-title', { hasText: a }).waitFor();
    await page.locator('#json', { hasText: '"n": 3' }).waitFor();
    await page.locator(`#rooms tr[data-room="${a}"][aria-selected="true"]`).waitFor();
    await page.goBack();
    await page.locator('#detail-title', { hasText: b }).waitFor();
    await page.locator('#json', { hasText: '"n": 0' }).waitFor();

    // A room nobody is in yet: the page waits, and watches it once someone joins.
    const c = `lab:${uid('c')}`;
    await page.evaluate((id) => { location.hash = id; }, c);
    await page.locator('#detail-empty', { hasText: 'is not open' }).waitFor();
    assert.equal(await page.inputValue('#play-room'), c, 'the playground offers the room');
    await shot(page, 'inspector-waiting');
    const other = await openInspector(ctx);
    await playJoin(other, c);
    await playCall(other, 'bump', '[4]');
    await page.locator('#live', { hasText: 'live' }).waitFor({ timeout: 5000 });
    await page.locator('#json', { hasText: '"n": 4' }).waitFor();
    assert.deepEqual(ctx.errors, []);
  });

  it('with --admin-token: kicks a member and closes a room from the page', T, async () => {
    const guarded = await startServer(['--admin-token', 'open-sesame'], { rooms: rooms.dir });
    try {
      const ctx = await person();
      const id = `counter:${uid('k')}`;
      const tab = await ctx.newPage();
      await tab.goto(`${guarded.origin}/counter.html#${id}`);
      await tab.locator('#value', { hasText: '0' }).waitFor();

      const page = await openInspector(ctx, guarded.origin, `#${id}`);
      await page.locator('#token-form').waitFor();
      await page.fill('#token', 'open-sesame');
      await page.press('#token', 'Enter');
      await page.locator('#live', { hasText: 'live' }).waitFor();
      await page.locator('#admin-state', { hasText: 'kept in this tab' }).waitFor();
      const me = await playJoin(page, id);
      await page.locator('#member-rows tr').nth(1).waitFor();
      const visitor = await page.locator('#member-rows tr:not(:has(.tag))').getAttribute('data-client');
      assert.notEqual(visitor, me);

      // Kick the counter tab's client, with a reason it sees.
      await page.click(`#member-rows tr[data-client="${visitor}"] button`);
      await page.locator('#admin-dialog[open]').waitFor();
      await page.fill('#admin-reason', 'too loud');
      await shot(page, 'inspector-kick-dialog');
      await page.click('#admin-confirm');
      await page.locator('#admin-dialog').waitFor({ state: 'hidden' });
      await tab.locator('.banner', { hasText: 'kicked: too loud' }).waitFor();
      await page.locator(`#member-rows tr[data-client="${visitor}"]`).waitFor({ state: 'detached' });
      await page.locator('#event-log li', { hasText: `${visitor} was kicked` }).waitFor();

      // Close the room, with the token forgotten first: the dialog asks for it.
      await page.click('#admin-forget');
      await page.click('#close-room');
      await page.locator('#admin-dialog[open]').waitFor();
      await page.click('#admin-confirm');
      await page.locator('#admin-token-row').waitFor();
      await page.locator('#admin-error', { hasText: 'admin token' }).waitFor();
      await page.fill('#admin-token', 'wrong');
      await page.click('#admin-confirm');
      await page.locator('#admin-error', { hasText: 'not accepted' }).waitFor();
      await page.fill('#admin-token', 'open-sesame');
      await page.click('#admin-confirm');
      await page.locator('#admin-dialog').waitFor({ state: 'hidden' });
      await page.locator('#live', { hasText: 'room closed' }).waitFor();
      await page.locator('#event-log li', { hasText: 'was closed' }).waitFor();
      await page.locator(`#play-clients [data-client="${me}"].out`).waitFor();
      await page.locator('#play-log li[data-verb="left"] .code', { hasText: 'closed' }).waitFor();
      await page.locator('#play-out', { hasText: 'closed' }).waitFor();
      assert.equal(await page.textContent('#play-who'), `${me} was in ${id}`);
      assert.equal((await api(guarded.origin, 'GET', `/api/rooms/${id}`)).status, 404);
      await shot(page, 'inspector-closed');
      assert.deepEqual(ctx.errors.filter((e) => !/status of 401/.test(e)), []);
    } finally {
      await guarded.stop();
    }
  });

  it('/inspect redirects to /_atrium/inspect', T, async () => {
    for (const [from, to] of [['/inspect', '/_atrium/inspect'], ['/atrium-client.js', '/_atrium/atrium-client.mjs']]) {
      const res = await fetch(`${server.origin}${from}`, { redirect: 'manual' });
      assert.equal(res.status, 307, from);
      assert.equal(res.headers.get('location'), to);
    }
    const ctx = await person();
    const page = await ctx.newPage();
    await page.goto(`${server.origin}/inspect#counter:nowhere`);
    assert.equal(new URL(page.url()).pathname, '/_atrium/inspect');
    await page.locator('#status[data-status="open"]').waitFor();
    await page.locator('#detail-title', { hasText: 'counter:nowhere' }).waitFor();
    assert.deepEqual(ctx.errors, []);
  });

  it('says so on the page when its module cannot load', T, async () => {
    const pub = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-public-'));
    // The demo page without its module (counter.js): what a page whose bundle is missing does.
    fs.copyFileSync(path.join(repo, 'public', 'counter.html'), path.join(pub, 'counter.html'));
    const own = await startServer([], { rooms: rooms.dir, pub });
    try {
      const page = await (await person()).newPage();
      await page.goto(`${own.origin}/counter.html`);
      await page.locator('#status', { hasText: 'Not loaded' }).waitFor({ timeout: WAIT });
      await page.locator('#toasts .banner', { hasText: 'could not load its scripts' }).waitFor({ timeout: WAIT });
    } finally {
      await own.stop();
      fs.rmSync(pub, { recursive: true, force: true });
    }
  });

  it('works when --public is a directory with only an index.html', T, async () => {
    const pub = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-public-'));
    fs.writeFileSync(path.join(pub, 'index.html'), '<!doctype html><title>My game</title><h1>My game</h1>\n');
    const own = await startServer([], { rooms: rooms.dir, pub });
    try {
      const home = await fetch(`${own.origin}/`);
      assert.match(await home.text(), /My game/);
      const bundle = await fetch(`${own.origin}/_atrium/atrium-client.mjs`);
      assert.equal(bundle.status, 200);
      assert.match(bundle.headers.get('content-type'), /javascript/);
      assert.equal((await fetch(`${own.origin}/counter.html`)).status, 404);

      const ctx = await person();
      const page = await ctx.newPage();
      await page.goto(`${own.origin}/inspect`);
      assert.equal(new URL(page.url()).pathname, '/_atrium/inspect');
      await page.locator('#status[data-status="open"]').waitFor();
      await page.locator('#types tr[data-type="counter"]').waitFor();
      await playJoin(page, `counter:${uid('o')}`);
      await playCall(page, 'increment', '[4]');
      await page.locator('#json', { hasText: '"value": 4' }).waitFor();
      await shot(page, 'inspector-own-public');
      assert.deepEqual(ctx.errors, []);
    } finally {
      await own.stop();
      fs.rmSync(pub, { recursive: true, force: true });
    }
  });

  it('fits a narrow window', T, async () => {
    const ctx = await person({ width: 1024, height: 800 });
    const page = await openInspector(ctx);
    const id = `lab:${uid('n')}`;
    await playJoin(page, id, '{"name": "Narrow"}');
    await playCall(page, 'bump');
    await page.locator('#json', { hasText: '"n": 1' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow} px`);
    await shot(page, 'inspector-narrow', true);
    assert.deepEqual(ctx.errors, []);
  });
});
