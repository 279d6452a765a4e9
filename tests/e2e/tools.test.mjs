// Tools for room authors: `atrium check [DIR]` lints and `atrium new NAME` scaffolds.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, exampleRooms, startServer, cleanup, connect } from './helpers.mjs';

const T = { timeout: 30000 };
const dirs = [];

function tempDir(files = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-tools-'));
  dirs.push(dir);
  const rooms = path.join(dir, 'rooms');
  fs.mkdirSync(rooms);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(rooms, name), text);
  return dir;
}

function atrium(args, cwd) {
  const r = spawnSync(BIN, args, { cwd, encoding: 'utf8', timeout: 15000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

after(async () => {
  await cleanup();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('atrium check', () => {
  it('passes the example rooms with exit code 0', T, () => {
    const r = atrium(['check', exampleRooms]);
    assert.equal(r.code, 0, r.out + r.err);
    // Every example (those starting with '_' are not rooms) was checked, and none has a problem.
    const scripts = fs.readdirSync(exampleRooms).filter((f) => f.endsWith('.lua') && !f.startsWith('_')).length;
    assert.ok(scripts >= 6, `only ${scripts} example rooms`);
    assert.match(r.out, new RegExp(`checked ${scripts} room scripts .*: 0 problems`));
  });

  it('prints file:line: message for load errors and mistakes that would load silently, and exits 1', T, () => {
    const dir = tempDir({
      'syntax.lua': 'local R = {}\nlocal x = = 1\nreturn R\n',
      'noreturn.lua': 'local R = {}\nfunction R:onJoin() end\n',
      'typos.lua': [
        'local R = { options = { maxmembers = 2 }, actions = { go = "nope" } }',
        'function R:onjoin(ctx) end',
        'return R',
      ].join('\n'),
    });
    const r = atrium(['check', 'rooms'], dir);
    assert.equal(r.code, 1, r.out + r.err);
    const lines = r.out.split('\n');
    assert.ok(lines.includes("rooms/syntax.lua:2: unexpected symbol near '='"), r.out);
    assert.ok(lines.some((l) => /^rooms\/noreturn\.lua:2: the script must return its class table/.test(l)), r.out);
    assert.ok(lines.includes("rooms/typos.lua:1: unknown option 'maxmembers' (did you mean 'maxMembers'?)"), r.out);
    assert.ok(lines.includes('rooms/typos.lua:1: actions.go is not a function (a string)'), r.out);
    assert.ok(lines.includes("rooms/typos.lua:2: 'onjoin' is never called: did you mean 'onJoin'?"), r.out);
    assert.match(r.out, /checked 3 room scripts in rooms: 5 problems/);
  });

  it('refuses a directory that does not exist with exit code 2', T, () => {
    const r = atrium(['check', '/nonexistent/rooms']);
    assert.equal(r.code, 2);
    assert.match(r.err, /not a directory/);
  });
});

describe('atrium new', () => {
  it('writes a starter room that passes check, serves, and is never overwritten', T, async () => {
    const dir = tempDir();
    const made = atrium(['new', 'lounge', '--dir', 'rooms'], dir);
    assert.equal(made.code, 0, made.err);
    const file = path.join(dir, 'rooms', 'lounge.lua');
    const text = fs.readFileSync(file, 'utf8');
    assert.match(text, /^-- rooms\/lounge\.lua/);
    assert.equal(atrium(['check', 'rooms'], dir).code, 0);

    const again = atrium(['new', 'lounge', '--dir', 'rooms'], dir);
    assert.equal(again.code, 1);
    assert.equal(fs.readFileSync(file, 'utf8'), text, 'the file is unchanged');
    assert.equal(atrium(['new', 'bad name'], dir).code, 2);
    // The same names the loader takes: '.' and '@' are TYPE characters too, ':' is not.
    assert.equal(atrium(['new', 'team.v2@eu', '--dir', 'rooms'], dir).code, 0);
    assert.equal(atrium(['check', 'rooms'], dir).code, 0);
    assert.equal(atrium(['new', 'a:b'], dir).code, 2);

    const server = await startServer({ rooms: path.join(dir, 'rooms') });
    const c = await connect(server.url);
    const join = await c.request({ op: 'join', room: 'lounge:1' });
    assert.equal(join.ok, true);
    assert.equal(join.result.state.online, 1);
    const said = await c.request({ op: 'call', room: 'lounge:1', method: 'say', args: ['hi'] });
    assert.deepEqual([said.ok, said.result], [true, 1]);
  });
});
