// Shared by the browser tests: the real `atrium serve` on a free loopback port, Debian's
// chromium driven by playwright-core (never a downloaded browser), browser contexts that
// collect page errors, and screenshots in tests/browser/artifacts/.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..');
export const BIN = process.env.ATRIUM_BIN ? path.resolve(process.env.ATRIUM_BIN) : path.join(repo, 'build', 'atrium');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const ARTIFACTS = path.join(here, 'artifacts');
export const WAIT = 5000;               // ms for any one expectation in a page
export const T = { timeout: 45000 };    // per test

let serial = 0;
export const uid = (p) => `${p}${process.pid}x${++serial}`;

/** What every suite needs before it starts. */
export function checkPrerequisites() {
  assert.ok(fs.existsSync(path.join(repo, 'web', 'atrium-client.mjs')),
    'web/atrium-client.mjs is missing: run `npm ci && npm run build` in clients/js');
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-browser.sh`);
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: build the server, or set ATRIUM_BIN`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
}

/** Starts `atrium serve` on 127.0.0.1 with a port the system picks. */
export async function startServer(args = [], { rooms = path.join(repo, 'rooms'), pub = path.join(repo, 'public') } = {}) {
  const child = spawn(BIN, ['serve', '--rooms', rooms, '--public', pub,
    '--host', '127.0.0.1', '--port', '0', ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr.on('data', (d) => { out = (out + d).slice(-100000); });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`server did not start within 10 s\n${out}`)); }, 10000);
    child.stdout.on('data', (d) => {
      out = (out + d).slice(-100000);
      const m = /atrium listening on \S+:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start ${BIN}: ${e.message}`)); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code})\n${out}`)); });
  });
  return {
    origin: `http://127.0.0.1:${port}`,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
}

/** A fresh context (its own storage: another person) that collects page and console errors. */
export async function newPerson(browser, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  context.setDefaultTimeout(WAIT);
  context.errors = [];
  context.on('page', (page) => {
    page.on('pageerror', (e) => context.errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') context.errors.push(`console: ${m.text()}`); });
  });
  return context;
}

export async function shot(page, name, fullPage = false) {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage });
}

/** A temporary rooms directory holding `files` ({'lab.lua': source}); remove() deletes it. */
export function tempRooms(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-rooms-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return {
    dir,
    write: (name, text) => fs.writeFileSync(path.join(dir, name), text),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export async function api(origin, method, route, body, token) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${origin}${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** Polls fn() until it returns a truthy value, at most `ms`. */
export async function until(fn, ms = WAIT, what = 'a condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
