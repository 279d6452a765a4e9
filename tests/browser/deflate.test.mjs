// permessage-deflate in Chromium (docs/protocol.md "Compression"): the browser offers it
// unasked, so every page gets it. A page's own WebSocket sees what was agreed; atrium-client
// joins a room whose state is large and sends large calls (Chromium compresses every message
// it sends once the extension is agreed), and the server's counters show both directions
// compressed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { T, uid, checkPrerequisites, startServer, launchBrowser, newPerson, tempRooms } from './helpers.mjs';

const ECHO = `local Echo = { defaultState = { rows = {} } }
Echo.actions = {}
function Echo.actions.put(self, ctx, text)
  self.state.rows[#self.state.rows + 1] = text
  return #text
end
return Echo
`;

async function counter(origin, name) {
  const text = await (await fetch(`${origin}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
}

describe('permessage-deflate in Chromium', () => {
  let rooms;
  let server;
  let browser;
  let ctx;

  before(async () => {
    checkPrerequisites();
    rooms = tempRooms({ 'echo.lua': ECHO });
    server = await startServer([], { rooms: rooms.dir });
    browser = await launchBrowser();
  });
  after(async () => {
    await ctx?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await server?.stop();
    rooms?.remove();
  });

  it('is agreed, and large state, patches and calls go compressed both ways', T, async () => {
    ctx = await newPerson(browser);
    await ctx.route('**/favicon.ico', (route) => route.fulfill({ status: 204, body: '' }));
    const page = await ctx.newPage();
    await page.goto(`${server.origin}/_atrium/atrium-client.mjs`);  // a page of the server's origin

    const agreed = await page.evaluate(() => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${location.host}/ws`);
      ws.onopen = () => { resolve(ws.extensions); ws.close(); };
      ws.onerror = () => reject(new Error('no upgrade'));
    }));
    assert.equal(agreed, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');

    const before = {
      out: await counter(server.origin, 'atrium_deflated_messages_total'),
      in: await counter(server.origin, 'atrium_inflated_messages_total'),
    };
    const room = `echo:${uid('z')}`;
    const result = await page.evaluate(async (id) => {
      const { connect } = await import('/_atrium/atrium-client.mjs');
      const client = await connect('/ws', { transports: ['websocket'] });
      const r = await client.join(id);
      const rows = [];
      for (let i = 0; i < 5; i += 1) {
        const text = `${i}:`.padEnd(4000, 'abcdefghij'.repeat(3));
        rows.push(text);
        if (await r.call('put', text) !== text.length) throw new Error('bad reply');
      }
      await new Promise((resolve) => { const t = setInterval(() => { if (r.state.rows.length === 5) { clearInterval(t); resolve(); } }, 20); });
      // A second member joins a room whose state is now 20 KB: its join reply is one large line.
      const other = await connect('/ws', { transports: ['websocket'] });
      const r2 = await other.join(id);
      return { same: JSON.stringify(r.state.rows) === JSON.stringify(rows), joined: JSON.stringify(r2.state.rows) === JSON.stringify(rows) };
    }, room);
    assert.deepEqual(result, { same: true, joined: true });
    assert.ok(await counter(server.origin, 'atrium_deflated_messages_total') > before.out, 'patches and the join reply went compressed');
    assert.ok(await counter(server.origin, 'atrium_inflated_messages_total') >= before.in + 5, 'the calls came compressed');
    assert.deepEqual(ctx.errors, []);
  });
});
