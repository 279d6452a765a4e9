// The HTTP fallback in Chromium (docs/client.md "transports"): atrium-client, as the server
// serves it, in a page where window.WebSocket is gone, and in one behind a proxy that answers
// 400 to every WebSocket upgrade. Each joins, calls, sees patches and events, and comes back
// with its seat when the proxy cuts the event stream.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { T, uid, checkPrerequisites, startServer, launchBrowser, newPerson, tempRooms, until } from './helpers.mjs';
import { refusingProxy } from '../../clients/js/test/refusing_proxy.mjs';

const LAB = `local Lab = { defaultState = { n = 0 }, options = { reconnectGrace = 30 } }
Lab.actions = {}
function Lab.actions.bump(self, ctx)
  self.state.n = self.state.n + 1
  self:emit("bumped", { n = self.state.n })
  return self.state.n
end
return Lab
`;

// What Chromium logs when the proxy cuts an event stream (on purpose, in every test).
const cut = (error) => /ERR_INCOMPLETE_CHUNKED_ENCODING/.test(error);

describe('the HTTP fallback in Chromium', () => {
  let rooms;
  let server;
  let proxy;
  let browser;
  const contexts = [];

  before(async () => {
    checkPrerequisites();
    rooms = tempRooms({ 'lab.lua': LAB });
    server = await startServer([], { rooms: rooms.dir });
    proxy = await refusingProxy(server.origin);
    browser = await launchBrowser();
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close().catch(() => {});
    await proxy?.close();
    await server?.stop();
    rooms?.remove();
  });

  // A page of the proxy's origin that opens no connection of its own (the inspector would:
  // its attempts would count as the test's): the client bundle itself, shown as text.
  const blank = () => `${proxy.origin}/_atrium/atrium-client.mjs`;
  // Chromium asks for /favicon.ico on such a page; the 404 would read as an error of the test's.
  const noFavicon = (ctx) => ctx.route('**/favicon.ico', (route) => route.fulfill({ status: 204, body: '' }));

  // In the page: connect, join, bump, wait for the patch and the event; then, once the test
  // cut the stream, bump again on the resumed seat. window.lab holds what happened.
  async function run(page, room) {
    await page.evaluate(async (id) => {
      const { connect } = await import('/_atrium/atrium-client.mjs');
      const lab = { events: [], statuses: [] };
      window.lab = lab;
      const client = await connect('/ws', { minReconnectDelay: 50 });
      client.on('status', (s) => lab.statuses.push(s));
      const r = await client.join(id);
      r.on('event', (e) => lab.events.push(e.data.n));
      r.on('resumed', (info) => { lab.resumed = info; });
      lab.first = await r.call('bump');
      await new Promise((resolve) => { const t = setInterval(() => { if (r.state.n === 1) { clearInterval(t); resolve(); } }, 20); });
      lab.room = r;
      lab.client = client;
    }, room);
    assert.equal(await page.evaluate(() => window.lab.first), 1);
    await until(() => page.evaluate(() => window.lab.events.length === 1), undefined, 'the event');
    proxy.cutStreams();
    await until(() => page.evaluate(() => window.lab.resumed?.recovered === true), undefined, 'the resume');
    const second = await page.evaluate(async () => {
      const n = await window.lab.room.call('bump');
      await new Promise((resolve) => { const t = setInterval(() => { if (window.lab.room.state.n === 2) { clearInterval(t); resolve(); } }, 20); });
      return n;
    });
    assert.equal(second, 2);
    assert.deepEqual(await page.evaluate(() => window.lab.events), [1, 2]);
  }

  it('a page without window.WebSocket uses the HTTP fallback', T, async () => {
    const ctx = await newPerson(browser);
    contexts.push(ctx);
    await ctx.addInitScript(() => { delete window.WebSocket; });
    await noFavicon(ctx);
    const page = await ctx.newPage();
    await page.goto(blank());
    assert.equal(await page.evaluate(() => typeof window.WebSocket), 'undefined');
    const refused = proxy.srv.refused;
    await run(page, `lab:${uid('nows')}`);
    assert.equal(proxy.srv.refused, refused, 'no upgrade was even tried');
    assert.deepEqual(ctx.errors.filter((e) => !cut(e)), []);
  });

  it('a page whose WebSocket upgrade is refused falls back by itself', T, async () => {
    const ctx = await newPerson(browser);
    contexts.push(ctx);
    await noFavicon(ctx);
    const page = await ctx.newPage();
    await page.goto(blank());
    const refused = proxy.srv.refused;
    await run(page, `lab:${uid('refused')}`);
    assert.equal(proxy.srv.refused, refused + 1, 'one refused upgrade, then HTTP for good');
    // The failed upgrade is Chromium's own console error; nothing else went wrong.
    assert.deepEqual(ctx.errors.filter((e) => !/WebSocket connection/.test(e) && !cut(e)), []);
  });
});
