// The package as others get it: `npm run build` makes both browser bundles, and the package
// installed into a project of its own (from the tarball of `npm pack`, or from the folder with
// --install-links) is importable as `atrium-client` and talks to the real server. The install prefers npm's cache (`npm ci` here has filled it) and every
// step has a time limit.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { pathToFileURL } from 'node:url';
import { here, startServer, uid } from './helpers.mjs';

const pkgDir = path.resolve(here, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));

// Runs a program; resolves with its stdout, rejects with its output when it fails or overruns.
function run(file, args, { cwd, timeout = 60000, env = process.env } = {}) {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, timeout, env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${file} ${args.join(' ')} failed (${err.killed ? `killed after ${timeout} ms` : err.code}):\n${stdout}\n${stderr}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

// npm as this test run was started (npm test), or the one on PATH.
function npm(args, opts) {
  const cli = process.env.npm_execpath;
  return cli && /\.[cm]?js$/.test(cli) ? run(process.execPath, [cli, ...args], opts) : run('npm', args, opts);
}

const temps = [];
function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temps.push(dir);
  return dir;
}
after(() => {
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
});

describe('npm run build', () => {
  it('writes an ES module and a classic script that defines the global Atrium, with the same exports', { timeout: 30000 }, async () => {
    const out = tempDir('atrium-build-');
    const esbuild = path.join(pkgDir, 'node_modules', '.bin', 'esbuild');
    const outputs = {};
    for (const name of ['build:esm', 'build:iife']) {
      const script = pkg.scripts[name];
      assert.ok(script, `package.json has a ${name} script`);
      assert.match(pkg.scripts.build, new RegExp(`npm run ${name}\\b`), `build runs ${name}`);
      // The script as written, with its output moved from web/ to a temporary directory.
      const args = script.split(/\s+/).slice(1).map((a) => a.replace('../../web/', `${out}/`));
      const outfile = args.find((a) => a.startsWith('--outfile=')).slice('--outfile='.length);
      outputs[name] = outfile;
      await run(esbuild, args, { cwd: pkgDir, timeout: 20000 });
    }
    assert.equal(path.basename(outputs['build:esm']), 'atrium-client.mjs');
    assert.equal(path.basename(outputs['build:iife']), 'atrium-client.js');

    const esm = await import(pathToFileURL(outputs['build:esm']).href);
    const sandbox = {};
    vm.createContext(sandbox);
    vm.runInContext(fs.readFileSync(outputs['build:iife'], 'utf8'), sandbox);
    assert.equal(typeof sandbox.Atrium, 'object', 'the classic script defines Atrium');
    assert.deepEqual(Object.keys(sandbox.Atrium).sort(), Object.keys(esm).sort());
    for (const name of ['connect', 'AtriumError', 'Client', 'Room', 'Watch', 'resolveUrl', 'backoff', 'PROTOCOL']) {
      assert.ok(name in esm, `the module exports ${name}`);
    }
    assert.equal(sandbox.Atrium.resolveUrl('http://h:1'), 'ws://h:1/ws');
    assert.equal(new sandbox.Atrium.AtriumError('x', 'y', { where: 'rooms/a.lua:1' }).where, 'rooms/a.lua:1');
  });
});

describe('installing atrium-client from the repository into another project', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  // An application's project, with `ws` for Node < 22 and atrium-client from `spec`; runs a
  // script there that imports atrium-client and uses it against the server.
  async function installAndRun(spec) {
    const project = tempDir('atrium-app-');
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
    await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', ...spec, `ws@${pkg.devDependencies.ws}`], {
      cwd: project,
      timeout: 120000,
    });
    const dir = path.join(project, 'node_modules', 'atrium-client');
    assert.ok(!fs.lstatSync(dir).isSymbolicLink(), 'a copy, not a link to the repository');
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version, pkg.version);
    assert.ok(fs.existsSync(path.join(project, 'node_modules', 'fast-json-patch', 'package.json')), 'its dependency came along');

    const room = `board:${uid('pack')}`;
    fs.writeFileSync(
      path.join(project, 'main.mjs'),
      `import WebSocket from 'ws';
import { connect, AtriumError } from 'atrium-client';
const client = await connect(process.argv[2], { WebSocket, timeout: 5000, reconnect: false });
const room = await client.join(process.argv[3]);
const n = await room.call('push', 'from the package');
const err = await room.call('nope').catch((e) => e);
console.log(JSON.stringify({ id: client.id, n, rejected: err instanceof AtriumError && err.code }));
await client.close();
`,
    );
    // The origin, without /ws: the installed client finds the endpoint itself.
    const out = await run(process.execPath, ['main.mjs', server.origin, room], { cwd: project, timeout: 20000 });
    const got = JSON.parse(out.trim().split('\n').pop());
    assert.match(got.id, /^c\d+$/);
    assert.equal(got.n, 1);
    assert.equal(got.rejected, 'unknown_method');
  }

  it('the tarball installs, imports as atrium-client and joins a room on the real server', { timeout: 180000 }, async () => {
    const packDir = tempDir('atrium-pack-');
    const packed = JSON.parse(await npm(['pack', '--json', '--pack-destination', packDir], { cwd: pkgDir, timeout: 60000 }));
    const tarball = path.join(packDir, packed[0].filename);
    assert.ok(fs.existsSync(tarball), `npm pack wrote ${tarball}`);
    const files = packed[0].files.map((f) => f.path).sort();
    for (const f of ['package.json', 'index.d.ts', 'src/index.js', 'src/client.js', 'src/emitter.js']) {
      assert.ok(files.includes(f), `the tarball has ${f}`);
    }
    assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('node_modules/')), `no tests or node_modules: ${files}`);
    await installAndRun([tarball]);
  });

  it('the folder installs with --install-links the same way', { timeout: 180000 }, async () => {
    await installAndRun(['--install-links', pkgDir]);
  });
});
