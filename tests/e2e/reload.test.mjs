// Hot reload (docs/rooms.md "Reloading, and server-side calls over HTTP"): a rewritten script
// changes the next reply and not the state; a broken rewrite keeps the old class; a
// deleted type keeps its live rooms and refuses new ones.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, cleanup, connectMany, uid, sleep, tempRooms } from './helpers.mjs';

const T = { timeout: 30000 };

function script(version, { extraDefaults = '', onReload = '' } = {}) {
  return `-- Test room: version ${version} of a script the reload tests rewrite.
local Rel = {
  defaultState = { n = 0${extraDefaults} },
}

Rel.actions = {}

function Rel.actions.version(self, ctx)
  return ${version}
end

function Rel.actions.bump(self, ctx)
  self.state.n = self.state.n + 1
  return self.state.n
end
${onReload}
return Rel
`;
}

// Editors save through a temporary file and a rename; the watcher must survive that.
function writeViaRename(dir, name, text) {
  const tmp = path.join(dir, `.${name}.${uid()}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(dir, name));
}

describe('reload', () => {
  let server;
  let dir;
  let a;
  const room = `rel:${uid()}`;
  before(async () => {
    dir = tempRooms({ 'rel.lua': script(1) });
    server = await startServer({ rooms: dir });
    [a] = await connectMany(server, 1);
    await a.join(room);
  });
  after(async () => {
    await cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // Each test starts from a good version loaded on request, so that one failure does
  // not cascade into the next.
  async function loadGood(version, extra) {
    writeViaRename(dir, 'rel.lua', script(version, extra));
    const res = await server.http('POST', '/api/reload');
    assert.equal(res.status, 200, res.text);
    const rel = res.json.types.find((t) => t.name === 'rel');
    assert.equal(rel.ok, true, JSON.stringify(rel));
    assert.ok(!rel.error);
    assert.equal(await a.act(room, 'version'), version);
  }

  it('serves the new methods after POST /api/reload and keeps the state', T, async () => {
    await a.act(room, 'bump');
    assert.equal(await a.act(room, 'bump'), 2);
    assert.equal(await a.act(room, 'version'), 1);
    const before = await a.sync(room);
    await loadGood(2);
    const after = await a.sync(room);
    assert.equal(after.seq, before.seq);
    assert.deepEqual(after.state, before.state);
    assert.equal(await a.act(room, 'bump'), before.state.n + 1, 'state survived the reload');
  });

  it('adds keys that are new in defaultState to live rooms and sends them as a patch', T, async () => {
    const before = await a.sync(room);
    await loadGood(3, { extraDefaults: ', added = { flag = "new", list = atrium.array() }' });
    await a.untilView(room, (s) => s.added !== undefined, 3000);
    const { state } = await a.sync(room);
    assert.deepEqual(state, { ...before.state, added: { flag: 'new', list: [] } });
  });

  it('runs onReload(previousClass) for each live room as a hook whose changes are patched', T, async () => {
    await loadGood(4, { onReload: 'function Rel:onReload(previous)\n  self.state.reloaded = type(previous)\nend\n' });
    await a.untilView(room, (s) => s.reloaded !== undefined, 3000);
    assert.equal((await a.sync(room)).state.reloaded, 'table');
  });

  it('picks up a script saved through a rename without being asked', T, async () => {
    await loadGood(5);
    writeViaRename(dir, 'rel.lua', script(6));
    const deadline = Date.now() + 8000;
    let version;
    while (Date.now() < deadline) {
      version = await a.act(room, 'version');
      if (version === 6) break;
      await sleep(100);
    }
    assert.equal(version, 6, 'the watcher reloaded the script');
  });

  it('keeps the old class serving when the new script does not load, and reports the error', T, async () => {
    await loadGood(7);
    const before = await a.sync(room);
    writeViaRename(dir, 'rel.lua', '-- broken on purpose\nlocal Rel = {\nreturn Rel\n');
    await sleep(600);                              // let the watcher see it too
    const res = await server.http('POST', '/api/reload');
    const rel = res.json.types.find((t) => t.name === 'rel');
    assert.equal(rel.ok, false);
    assert.match(rel.error, /rel\.lua:\d+:/);
    assert.equal(await a.act(room, 'version'), 7, 'the last good class still serves');
    assert.deepEqual((await a.sync(room)).state, before.state);
    const status = await server.http('GET', '/api/status');
    assert.match(status.json.types.find((t) => t.name === 'rel').error, /rel\.lua:\d+:/);
  });

  it('keeps live rooms of a deleted type and answers new joins with not_found', T, async () => {
    await loadGood(8);
    const before = await a.sync(room);
    fs.unlinkSync(path.join(dir, 'rel.lua'));
    await sleep(600);
    await server.http('POST', '/api/reload');
    assert.equal(await a.act(room, 'version'), 8, 'the live room keeps serving');
    assert.deepEqual((await a.sync(room)).state, before.state);
    const [c] = await connectMany(server, 1);
    await c.fails({ op: 'join', room: `rel:${uid()}` }, 'not_found');
  });
});
