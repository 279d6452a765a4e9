// Browser tests: the demo pages in public/ served by the real `atrium serve`, driven in
// Debian's chromium by playwright-core (never a downloaded browser). Screenshots go to
// tests/browser/artifacts/. Needs: the server binary (ATRIUM_BIN, default build/atrium),
// web/atrium-client.mjs (cd clients/js && npm run build) and /usr/bin/chromium
// (scripts/install-browser.sh). The inspector and playground are in inspector.test.mjs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repo, T, uid, checkPrerequisites, startServer, launchBrowser, newPerson, shot } from './helpers.mjs';

describe('demo pages in chromium', () => {
  let server;
  let browser;
  const contexts = [];

  // A fresh browser context (its own storage: another person) with console errors collected.
  async function person() {
    const context = await newPerson(browser);
    contexts.push(context);
    return context;
  }

  async function openChat(context, name) {
    const page = await context.newPage();
    await page.goto(`${server.origin}/`);
    await page.locator('#status[data-status="open"]').waitFor();
    await page.fill('#name', name);
    await page.locator('#name').dispatchEvent('change');
    return page;
  }

  async function createRoom(page, title, password = '') {
    await page.fill('#new-name', title);
    await page.fill('#new-password', password);
    await page.click('#create button[type="submit"]');
    await page.locator('#room-title', { hasText: title }).waitFor();
  }

  async function send(page, text) {
    await page.fill('#text', text);
    await page.press('#text', 'Enter');
  }

  before(async () => {
    checkPrerequisites();
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close().catch(() => {});
    await server?.stop();
  });

  it('the chat starts with clear empty states', T, async () => {
    const ctx = await person();
    const page = await ctx.newPage();
    await page.goto(`${server.origin}/`);
    await page.locator('#status[data-status="open"]').waitFor();
    await page.locator('#rooms-empty').waitFor();
    await page.locator('#no-room').waitFor();
    await shot(page, 'chat-empty');
    assert.deepEqual(ctx.errors, []);
  });

  it('two people in two browser contexts chat with each other', T, async () => {
    const [ca, cb] = [await person(), await person()];
    const alice = await openChat(ca, 'Alice');
    const bob = await openChat(cb, 'Bob');
    const title = `Tea ${uid('')}`;
    await createRoom(alice, title);
    await alice.locator('#messages-empty').waitFor();

    // Bob sees the room appear in his list (directory:main, live) and joins it.
    const entry = bob.locator('#rooms button', { hasText: title });
    await entry.waitFor();
    await entry.click();
    await bob.locator('#room-title', { hasText: title }).waitFor();

    await send(alice, 'Hello Bob!');
    await bob.locator('#messages .text', { hasText: 'Hello Bob!' }).waitFor();
    await send(bob, 'Hi Alice, good to see you.');
    await alice.locator('#messages .text', { hasText: 'Hi Alice, good to see you.' }).waitFor();

    // Who is online: both names in both member lists, and the count.
    await alice.locator('#members li', { hasText: 'Bob' }).waitFor();
    await bob.locator('#members li', { hasText: 'Alice' }).waitFor();
    await alice.locator('#room-meta', { hasText: '2 people online' }).waitFor();
    await alice.locator('#rooms button', { hasText: title }).locator('.count', { hasText: '2' }).waitFor();
    // Names are shown on messages, and own messages are marked.
    await bob.locator('#messages .who', { hasText: 'Alice' }).waitFor();
    await alice.locator('#messages .message.mine .text', { hasText: 'Hello Bob!' }).waitFor();
    await shot(alice, 'chat-alice');
    await shot(bob, 'chat-bob');

    // Bob leaves: Alice's list and count follow.
    await bob.click('#leave');
    await alice.locator('#room-meta', { hasText: '1 person online' }).waitFor();
    await alice.locator('#members li', { hasText: 'Bob' }).waitFor({ state: 'detached' });
    assert.deepEqual([...ca.errors, ...cb.errors], []);
  });

  it('a wrong password is refused and the right one accepted', T, async () => {
    const [ca, cb] = [await person(), await person()];
    const owner = await openChat(ca, 'Olga');
    const guest = await openChat(cb, 'Gus');
    const title = `Vault ${uid('')}`;
    await createRoom(owner, title, 'hunter2');
    await owner.locator('#room-title .badge', { hasText: 'Private' }).waitFor();

    const entry = guest.locator('#rooms button', { hasText: title });
    await entry.locator('svg.lock').waitFor();
    await entry.click();
    const dialog = guest.locator('#password-dialog');
    await dialog.waitFor();
    assert.equal(await guest.locator('#password-error').isVisible(), false, 'no error before a first try');
    await shot(guest, 'password-prompt');

    await guest.fill('#password', 'letmein');
    await guest.click('#password-join');
    await guest.locator('#password-error').waitFor();  // refused: asked again, saying so
    await shot(guest, 'password-wrong');
    assert.equal(await guest.locator('#room-head').isVisible(), false, 'not in the room');

    await guest.fill('#password', 'hunter2');
    await guest.press('#password', 'Enter');
    await guest.locator('#room-title', { hasText: title }).waitFor();
    await dialog.waitFor({ state: 'hidden' });
    await send(guest, 'I am in.');
    await owner.locator('#messages .text', { hasText: 'I am in.' }).waitFor();
    await shot(guest, 'password-accepted');
    assert.deepEqual([...ca.errors, ...cb.errors], []);
  });

  it('the counter stays in step across two tabs', T, async () => {
    const ctx = await person();
    const id = `counter:${uid('c')}`;
    const [one, two] = [await ctx.newPage(), await ctx.newPage()];
    for (const p of [one, two]) {
      await p.goto(`${server.origin}/counter.html#${id}`);
      await p.locator('#value', { hasText: '0' }).waitFor();
    }
    const both = async (v) => {
      await one.locator('#value', { hasText: new RegExp(`^${v}$`) }).waitFor();
      await two.locator('#value', { hasText: new RegExp(`^${v}$`) }).waitFor();
    };
    await one.click('#inc');
    await both(1);
    await two.click('#inc');
    await both(2);
    await two.selectOption('#step', '5');
    await two.click('#inc');
    await both(7);
    await one.click('#dec');
    await both(6);
    await one.locator('#last', { hasText: 'Last change by you' }).waitFor();
    await two.locator('#last', { hasText: /Last change by c\d+/ }).waitFor();
    await shot(one, 'counter-tab1');
    await shot(two, 'counter-tab2');
    await two.click('#reset');
    await both(0);
    assert.deepEqual(ctx.errors, []);
  });

  it("the demo pages show a script's error message as the script wrote it", T, async () => {
    const ctx = await person();
    // Chat: 300 two-byte characters pass the input's 500-character limit, not the room's
    // 500-byte one. The page keeps the text and shows the message, with no file or line.
    const chat = await openChat(ctx, 'Erin');
    await createRoom(chat, `Errors ${uid('')}`);
    const long = 'é'.repeat(300);
    await chat.fill('#text', long);
    await chat.press('#text', 'Enter');
    const composeError = chat.locator('#compose-error');
    await composeError.waitFor();
    assert.equal(await composeError.textContent(), 'Not sent: a message is at most 500 bytes');
    assert.equal(await chat.inputValue('#text'), long);
    await shot(chat, 'chat-error');

    // Counter: a step the script refuses (the page offers only good ones: add a bad one).
    const counter = await ctx.newPage();
    await counter.goto(`${server.origin}/counter.html#counter:${uid('e')}`);
    await counter.locator('#value', { hasText: '0' }).waitFor();
    await counter.evaluate(() => document.getElementById('step').append(new Option('500', '500')));
    await counter.selectOption('#step', '500');
    await counter.click('#inc');
    await counter.locator('#error', { hasText: 'step' }).waitFor();
    assert.equal(await counter.textContent('#error'), 'the step must be a whole number from 1 to 100');
    assert.equal(await counter.textContent('#value'), '0');
    await shot(counter, 'counter-error');
    assert.deepEqual(ctx.errors, []);
  });

  it('the inspector shows a state change within a second, without joining', T, async () => {
    const ctx = await person();
    const id = `counter:${uid('i')}`;
    const tab = await ctx.newPage();
    await tab.goto(`${server.origin}/counter.html#${id}`);
    await tab.locator('#value', { hasText: '0' }).waitFor();

    const inspector = await ctx.newPage();
    await inspector.goto(`${server.origin}/inspect`);
    await inspector.locator('#status[data-status="open"]').waitFor();
    // The room shows up in the live list (polled every 2 s) with one member; pick it.
    const row = inspector.locator(`#rooms tr[data-room="${id}"]`);
    await row.waitFor({ timeout: 4000 });
    await inspector.locator('#types tr[data-type="counter"]').waitFor();
    await row.click();
    await inspector.locator('#live', { hasText: 'live' }).waitFor();
    await inspector.locator('#json', { hasText: '"value": 0' }).waitFor();

    await tab.click('#inc');
    const t0 = Date.now();
    await inspector.locator('#json', { hasText: '"value": 1' }).waitFor({ timeout: 1000 });
    const took = Date.now() - t0;
    assert.ok(took < 1000, `the change showed after ${took} ms`);
    await inspector.locator('#patch-log li', { hasText: '/value' }).waitFor();
    await tab.click('#inc');
    await inspector.locator('#json', { hasText: '"value": 2' }).waitFor({ timeout: 1000 });
    // Watching is not membership: the room still has exactly one member.
    const members = await (await fetch(`${server.origin}/api/rooms/${id}`)).json();
    assert.equal(members.members, 1);
    await shot(inspector, 'inspector', true);
    assert.deepEqual(ctx.errors, []);
  });

  it('the inspector asks for the admin token when the server has one, and shows load errors', T, async () => {
    // Its own rooms: the counter, and a script that does not load.
    const rooms = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-rooms-'));
    fs.copyFileSync(path.join(repo, 'rooms', 'counter.lua'), path.join(rooms, 'counter.lua'));
    fs.writeFileSync(path.join(rooms, 'broken.lua'), '-- a syntax error on purpose\nlocal Broken = {\n  defaultState = { x = = 1 },\n}\nreturn Broken\n');
    const guarded = await startServer(['--admin-token', 'open-sesame'], { rooms });
    try {
      const ctx = await person();
      const id = `counter:${uid('g')}`;
      const tab = await ctx.newPage();
      await tab.goto(`${guarded.origin}/counter.html#${id}`);
      await tab.locator('#value', { hasText: '0' }).waitFor();
      const inspector = await ctx.newPage();
      await inspector.goto(`${guarded.origin}/inspect#${id}`);
      await inspector.locator('#token-form').waitFor();
      await inspector.fill('#token', 'wrong');
      await inspector.press('#token', 'Enter');
      await inspector.locator('#token-error').waitFor();
      await shot(inspector, 'inspector-token');
      await inspector.fill('#token', 'open-sesame');
      await inspector.press('#token', 'Enter');
      await inspector.locator('#json', { hasText: '"value": 0' }).waitFor();
      await tab.click('#inc');
      await inspector.locator('#json', { hasText: '"value": 1' }).waitFor({ timeout: 1000 });
      await inspector.locator('#types tr[data-type="broken"] .pill', { hasText: 'load error' }).waitFor();
      await inspector.locator('#types .type-error', { hasText: 'broken.lua:3' }).waitFor();
      await shot(inspector, 'inspector-load-error', true);
      assert.deepEqual(ctx.errors, []);
    } finally {
      await guarded.stop();
      fs.rmSync(rooms, { recursive: true, force: true });
    }
  });
});
