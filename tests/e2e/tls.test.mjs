// TLS on the server's one port (`--tls-cert`, `--tls-key`; docs/protocol.md "Transport"):
// wss:// and https:// only, TLS 1.2 and later, HTTP/1.1 by ALPN, and SIGHUP reloading the
// certificate without dropping the connections that exist. The certificates are made here,
// self-signed for 127.0.0.1 by the openssl CLI, and trusted through the clients' `ca`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import WebSocket from 'ws';
import { BIN, Client, cleanup, exampleRooms, here, sleep, startServer, uid } from './helpers.mjs';

const T = { timeout: 30000 };
const HOST = '127.0.0.1';

// A fresh self-signed P-256 certificate for 127.0.0.1 (CN and SAN) in dir/NAME.{crt,key}:
// {cert, key} (PEM text) and the certificate's SHA-256 fingerprint as node prints it.
function makeCert(dir, name) {
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${HOST}`,
    '-addext', `subjectAltName=IP:${HOST}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const cert = fs.readFileSync(certFile, 'utf8');
  const key = fs.readFileSync(keyFile, 'utf8');
  return { cert, key, fingerprint: new crypto.X509Certificate(cert).fingerprint256 };
}

// Opens wss:// and resolves with a helpers Client once `welcome` arrived; client.peer is
// the certificate the server presented.
async function connectWss(port, ca, { timeoutMs = 5000 } = {}) {
  const ws = new WebSocket(`wss://${HOST}:${port}/ws`, { ca, handshakeTimeout: timeoutMs });
  const client = new Client(ws);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('no wss upgrade in time')); }, timeoutMs);
    ws.once('upgrade', (res) => { client.peer = res.socket.getPeerCertificate(); });
    ws.once('open', () => { clearTimeout(timer); resolve(); });
    ws.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
  client.welcome = await client.next((m) => m.op === 'welcome', timeoutMs);
  return client;
}

// One HTTPS request on its own connection: {status, headers, text, json, alpn, peer}.
function httpsRequest(port, ca, method, p, body) {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers = { connection: 'close' };
  if (payload) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = https.request({ host: HOST, port, path: p, method, headers, ca, agent: false,
      ALPNProtocols: ['h2', 'http/1.1'], timeout: 5000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json,
          httpVersion: res.httpVersion, alpn: res.socket.alpnProtocol });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer in time`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// A TLS handshake alone: resolves {ok: true, protocol, fingerprint} or {ok: false, error}.
function handshake(port, options) {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: HOST, port, servername: undefined, ...options });
    const timer = setTimeout(() => { socket.destroy(); resolve({ ok: false, error: new Error('timeout') }); }, 5000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const result = { ok: true, protocol: socket.getProtocol(),
        fingerprint: socket.getPeerCertificate().fingerprint256, alpn: socket.alpnProtocol };
      socket.end();
      resolve(result);
    });
    socket.once('error', (error) => { clearTimeout(timer); resolve({ ok: false, error }); });
  });
}

// Waits for a log line matching re in the server's stderr, after the first `from` chars.
async function logLine(server, re, from = 0, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = server.stderr().slice(from).split('\n').find((l) => re.test(l));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no log line ${re} in time; stderr:\n${server.stderr().slice(-2000)}`);
    await sleep(20);
  }
}

// Runs `atrium serve` expected to refuse to start: {code, stderr}.
function serveRefused(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['serve', '--rooms', 'rooms', '--port', '0', ...args],
      { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.on('data', (d) => { stdout += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`still running: ${stdout}`)); }, 10000);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr, stdout }); });
  });
}

describe('TLS', () => {
  let dir;
  let certFile;
  let keyFile;
  let first;
  let server;
  let ca;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-tls-'));
    first = makeCert(dir, 'first');
    certFile = path.join(dir, 'server.crt');
    keyFile = path.join(dir, 'server.key');
    fs.writeFileSync(certFile, first.cert);
    fs.writeFileSync(keyFile, first.key, { mode: 0o600 });
    ca = [first.cert];
    server = await startServer({ rooms: exampleRooms, args: ['--tls-cert', certFile, '--tls-key', keyFile] });
  });
  after(async () => {
    await cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves wss://: welcome, join, and patches to the other members', T, async () => {
    const a = await connectWss(server.port, ca);
    const b = await connectWss(server.port, ca);
    assert.equal(a.welcome.op, 'welcome');
    assert.equal(a.peer.fingerprint256, first.fingerprint);
    const room = `counter:${uid()}`;
    await a.join(room);
    await b.join(room);
    assert.equal(await a.act(room, 'increment', 5), 5);
    await b.untilView(room, (state) => state.value === 5);
    assert.deepEqual(b.badLines, []);
    await a.close();
    await b.close();
  });

  it('serves the HTTP API and static files over https://, HTTP/1.1 by ALPN', T, async () => {
    const status = await httpsRequest(server.port, ca, 'GET', '/api/status');
    assert.equal(status.status, 200, status.text);
    assert.ok(Array.isArray(status.json.types), status.text);
    assert.equal(status.alpn, 'http/1.1', 'h2 is offered by the client and not chosen');
    assert.equal(status.httpVersion, '1.1');

    const c = await connectWss(server.port, ca);
    const room = `pubsub-${uid()}`;
    await c.join(room);
    const emit = await httpsRequest(server.port, ca, 'POST', `/api/rooms/${room}/emit`,
      { event: 'news', data: [1, 2] });
    assert.equal(emit.status, 200, emit.text);
    assert.deepEqual(emit.json, { delivered: 1 });
    assert.deepEqual((await c.next({ op: 'event', event: 'news' })).data, [1, 2]);

    const client = await httpsRequest(server.port, ca, 'GET', '/_atrium/atrium-client.mjs');
    assert.equal(client.status, 200);
    assert.ok(client.text.length > 100);

    const h2only = await handshake(server.port, { ca, ALPNProtocols: ['h2'] });
    assert.notEqual(h2only.ok && h2only.alpn, 'h2', 'h2 is never negotiated');
    await c.close();
  });

  it('refuses plain ws:// and http:// on the TLS port', T, async () => {
    const ws = new WebSocket(`ws://${HOST}:${server.port}/ws`, { handshakeTimeout: 4000 });
    const messages = [];
    ws.on('message', (m) => messages.push(m.toString()));
    const outcome = await new Promise((resolve) => {
      ws.once('open', () => resolve('open'));
      ws.once('error', (e) => resolve(`error: ${e.message}`));
      ws.once('unexpected-response', (req, res) => { res.resume(); resolve(`http ${res.statusCode}`); });
    });
    assert.match(outcome, /^error/, `a plain WebSocket must fail, got ${outcome}`);
    ws.terminate();
    assert.deepEqual(messages, [], 'no welcome over a plain connection');

    const plain = await new Promise((resolve) => {
      const req = http.get({ host: HOST, port: server.port, path: '/api/status', agent: false, timeout: 4000 },
        (res) => { res.resume(); resolve(`http ${res.statusCode}`); });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => resolve(`error: ${e.message}`));
    });
    assert.match(plain, /^error/, `plain HTTP must fail, got ${plain}`);
  });

  it('refuses TLS 1.1 and accepts TLS 1.2 and 1.3', T, async () => {
    // SECLEVEL=0 lets this client offer TLS 1.1 at all, so the refusal is the server's.
    const old = await handshake(server.port, { ca, minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0' });
    assert.equal(old.ok, false, 'TLS 1.1 must be refused');
    assert.match(String(old.error?.message), /protocol version|unsupported protocol/i, String(old.error));
    const v12 = await handshake(server.port, { ca, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2',
      ciphers: 'DEFAULT@SECLEVEL=0' });
    assert.equal(v12.ok, true, String(v12.error));
    assert.equal(v12.protocol, 'TLSv1.2');
    const v13 = await handshake(server.port, { ca });
    assert.equal(v13.ok, true, String(v13.error));
    assert.equal(v13.protocol, 'TLSv1.3');
  });

  it('reloads the certificate on SIGHUP; established connections stay and keep working', T, async () => {
    const a = await connectWss(server.port, ca);
    const b = await connectWss(server.port, ca);
    const room = `counter:${uid()}`;
    await a.join(room);
    await b.join(room);
    const before = a.peer.fingerprint256;

    const second = makeCert(dir, `second-${uid()}`);
    assert.notEqual(second.fingerprint, before);
    fs.writeFileSync(certFile, second.cert);
    fs.writeFileSync(keyFile, second.key);
    ca.push(second.cert);
    const from = server.stderr().length;
    server.child.kill('SIGHUP');
    const line = await logLine(server, /net tls_reloaded /, from);
    assert.ok(line.includes(second.fingerprint.replaceAll(':', '').toLowerCase()), line);

    const fresh = await connectWss(server.port, ca);
    assert.equal(fresh.peer.fingerprint256, second.fingerprint, 'a new connection gets the new certificate');
    assert.equal((await handshake(server.port, { ca })).fingerprint, second.fingerprint);

    // The connections made before the reload are untouched.
    assert.equal(a.closeInfo, null);
    assert.equal(b.closeInfo, null);
    assert.equal(await a.ok({ op: 'ping' }), 'pong');
    assert.equal(await a.act(room, 'increment', 3), 3);
    await b.untilView(room, (state) => state.value === 3);
    await fresh.join(room);
    assert.equal(await fresh.act(room, 'increment', 1), 4);
    await a.untilView(room, (state) => state.value === 4);
    await Promise.all([a.close(), b.close(), fresh.close()]);
  });

  it('keeps the certificate in use when a reload finds a broken or mismatched key, and says why', T, async () => {
    const inUse = (await handshake(server.port, { ca })).fingerprint;
    const a = await connectWss(server.port, ca);
    const goodCert = fs.readFileSync(certFile, 'utf8');
    const goodKey = fs.readFileSync(keyFile, 'utf8');

    fs.writeFileSync(keyFile, '-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n');
    let from = server.stderr().length;
    server.child.kill('SIGHUP');
    let line = await logLine(server, /net tls_reload_failed /, from);
    assert.match(line, /--tls-key/);
    assert.equal(server.stderr().slice(from).includes('net tls_reloaded '), false);
    assert.equal((await handshake(server.port, { ca })).fingerprint, inUse, 'the old certificate stays');

    // A new certificate whose key is not the one in the key file.
    const other = makeCert(dir, `other-${uid()}`);
    fs.writeFileSync(certFile, other.cert);
    fs.writeFileSync(keyFile, goodKey);
    from = server.stderr().length;
    server.child.kill('SIGHUP');
    line = await logLine(server, /net tls_reload_failed /, from);
    assert.match(line, /does not belong/);
    assert.equal((await handshake(server.port, { ca })).fingerprint, inUse, 'the old certificate stays');

    const fresh = await connectWss(server.port, ca);
    assert.equal(fresh.peer.fingerprint256, inUse);
    assert.equal(await a.ok({ op: 'ping' }), 'pong', 'an established connection is untouched');
    assert.equal(await fresh.ok({ op: 'ping' }), 'pong');
    fs.writeFileSync(certFile, goodCert);
    await Promise.all([a.close(), fresh.close()]);
  });

  it('refuses to start with only one of --tls-cert and --tls-key, or a file it cannot read', T, async () => {
    const onlyCert = await serveRefused(['--tls-cert', certFile]);
    assert.equal(onlyCert.code, 2, onlyCert.stderr);
    assert.match(onlyCert.stderr, /--tls-cert needs --tls-key/);
    assert.equal(onlyCert.stderr.trim().split('\n').length, 1, onlyCert.stderr);
    assert.doesNotMatch(onlyCert.stdout, /listening/);

    const onlyKey = await serveRefused(['--tls-key', keyFile]);
    assert.equal(onlyKey.code, 2, onlyKey.stderr);
    assert.match(onlyKey.stderr, /--tls-key needs --tls-cert/);

    const missing = await serveRefused(['--tls-cert', path.join(dir, 'nope.crt'), '--tls-key', keyFile]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /--tls-cert .*nope\.crt: /);
    assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);

    // Readable but not a pair: the server says so in one line and does not listen.
    const other = makeCert(dir, `mismatch-${uid()}`);
    const otherKey = path.join(dir, 'mismatch.key');
    fs.writeFileSync(otherKey, other.key);
    const mismatch = await serveRefused(['--tls-cert', certFile, '--tls-key', otherKey]);
    assert.notEqual(mismatch.code, 0, mismatch.stderr);
    assert.match(mismatch.stderr, /does not belong to the certificate/);
    assert.doesNotMatch(mismatch.stdout, /listening/);
  });

  it('exits cleanly after all that (no sanitizer report under ASan)', T, async () => {
    const code = await server.stop(30000);
    const stderr = server.stderr();
    assert.doesNotMatch(stderr, /AddressSanitizer|LeakSanitizer|runtime error:/, stderr.slice(-4000));
    assert.equal(code, 0, stderr.slice(-4000));
  });
});
