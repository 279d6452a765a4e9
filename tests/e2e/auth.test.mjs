// Who may connect (docs/protocol.md "Connecting: tokens, origins, TLS"): tokens at the
// upgrade and in band, their expiry, the known attack tokens, origins and cross-site
// WebSocket hijacking, connections per address, and the connection gate rooms/_connect.lua.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { startServer, cleanup, connect, tempRooms, sleep } from './helpers.mjs';

const T = { timeout: 30000 };
const SECRET = 'a-test-secret-of-thirty-two-bytes!!';

const b64 = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

// A compact JWS. alg picks the signature; `key` is the HMAC secret or a private KeyObject.
function sign(payload, { alg = 'HS256', key = SECRET, header = {} } = {}) {
  const head = b64({ alg, typ: 'JWT', ...header });
  const body = b64(payload);
  const data = `${head}.${body}`;
  let sig = '';
  if (alg === 'HS256') sig = crypto.createHmac('sha256', key).update(data).digest('base64url');
  else if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(data), key).toString('base64url');
  else if (alg === 'ES256') {
    sig = crypto.sign('sha256', Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  }
  return `${data}.${sig}`;
}

const WHOAMI = `
local W = { defaultState = { n = 0 }, actions = {} }
function W.actions.who(self, ctx)
  return { userId = ctx.userId or false, claims = ctx.claims or false, user = ctx.user or false }
end
return W
`;

// Resolves with the HTTP status an upgrade was refused with, or 101 when it opened.
async function upgradeStatus(url, opts = {}) {
  try {
    const c = await connect(url, opts);
    c.ws.terminate();
    return 101;
  } catch (e) {
    if (e.status) return e.status;
    throw e;
  }
}

async function who(c, room = 'whoami:1') {
  await c.ok({ op: 'join', room });
  return c.ok({ op: 'call', room, method: 'who' });
}

describe('tokens (HS256)', () => {
  let server;
  before(async () => {
    server = await startServer({ rooms: tempRooms({ 'whoami.lua': WHOAMI }), args: ['--jwt-secret', SECRET] });
  });
  after(cleanup);

  it('a valid token in ?token= makes sub the userId, in welcome and in every hook with its claims', T, async () => {
    const token = sign({ sub: 'ada', role: 'admin', exp: now() + 3600 });
    const c = await connect(`${server.url}?token=${token}`);
    assert.equal(c.welcome.userId, 'ada');
    const r = await who(c);
    assert.equal(r.userId, 'ada');
    assert.equal(r.claims.role, 'admin');
    assert.equal(r.claims.sub, 'ada');
    assert.equal(r.user, false, 'no gate: no ctx.user');
  });

  it('takes the token from Authorization: Bearer too', T, async () => {
    const c = await connect(server.url, { headers: { Authorization: `Bearer ${sign({ sub: 'grace' })}` } });
    assert.equal(c.welcome.userId, 'grace');
  });

  it('lets anonymous connections in without --require-auth, with no userId', T, async () => {
    const c = await connect(server.url);
    assert.equal(c.welcome.userId, undefined);
    const r = await who(c);
    assert.equal(r.userId, false);
    assert.equal(r.claims, false);
  });

  it('refuses a present but invalid token with 401, never downgrading it to anonymous', T, async () => {
    const bad = sign({ sub: 'ada' }, { key: 'another secret, not the server one' });
    assert.equal(await upgradeStatus(`${server.url}?token=${bad}`), 401);
  });

  it('refuses every known attack token with 401 and logs which check failed', T, async () => {
    const { privateKey: rsa } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const good = sign({ sub: 'ada' });
    const [h, p] = good.split('.');
    const attacks = {
      'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${p}.`,
      'alg None': `${b64({ alg: 'None' })}.${p}.`,
      'RS256 to an HS256 server': sign({ sub: 'ada' }, { alg: 'RS256', key: rsa }),
      'HS512': `${b64({ alg: 'HS512' })}.${p}.${crypto.createHmac('sha512', SECRET).update(`${b64({ alg: 'HS512' })}.${p}`).digest('base64url')}`,
      'crit header': sign({ sub: 'ada' }, { header: { crit: ['exp'] } }),
      'expired': sign({ sub: 'ada', exp: now() - 120 }),
      'not yet valid': sign({ sub: 'ada', nbf: now() + 120 }),
      'signature stripped': `${h}.${p}.`,
      'payload swapped': `${h}.${b64({ sub: 'root' })}.${good.split('.')[2]}`,
      'over 8 KiB': sign({ sub: 'ada', pad: 'x'.repeat(6200) }),
      'bad base64': `${h}.${p}!.${good.split('.')[2]}`,
      'padded base64': `${h}=.${p}.${good.split('.')[2]}`,
      'bad JSON': (() => { const hh = b64('{"alg":"HS256"'); const pp = b64('{}');
        return `${hh}.${pp}.${crypto.createHmac('sha256', SECRET).update(`${hh}.${pp}`).digest('base64url')}`; })(),
      'two segments': `${h}.${p}`,
      'sub not a string': sign({ sub: 42 }),
    };
    assert.ok(attacks['over 8 KiB'].length > 8192 && attacks['over 8 KiB'].length < 9000);
    for (const [name, token] of Object.entries(attacks)) {
      assert.equal(await upgradeStatus(`${server.url}?token=${encodeURIComponent(token)}`), 401, name);
    }
    // Far past what a handshake may carry: refused one way or another, never opened.
    const huge = sign({ sub: 'ada', pad: 'x'.repeat(40000) });
    await assert.rejects(connect(`${server.url}?token=${huge}`));
    const res = await fetch(`${server.origin}/ws?token=${attacks.expired}`, {
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64') },
    }).catch(() => null);
    if (res) {
      const body = await res.text();
      assert.doesNotMatch(body, /expire|signature|alg/i, 'the 401 body does not say which check failed');
    }
    await sleep(100);
    assert.match(server.stderr(), /upgrade_refused status=401 .*expired/, 'the log says which check failed');
    const metrics = (await server.http('GET', '/metrics')).text;
    const refused = Number(/atrium_upgrades_refused_token_total (\d+)/.exec(metrics)[1]);
    assert.ok(refused >= Object.keys(attacks).length, metrics);
  });

  it('closes a connection with 4003 when its token expires, unless refreshed in band', T, async () => {
    const short = await connect(`${server.url}?token=${sign({ sub: 'ada', exp: now() + 2 })}`);
    const kept = await connect(`${server.url}?token=${sign({ sub: 'bob', exp: now() + 2 })}`);
    assert.equal(await kept.ok({ op: 'auth', token: sign({ sub: 'bob', exp: now() + 3600 }) }), undefined);
    const info = await short.closed;
    assert.equal(info.code, 4003);
    assert.equal(info.reason, 'token expired');
    await sleep(500);
    assert.equal(kept.closeInfo, null, 'the refreshed connection stays');
    assert.equal(await kept.ok({ op: 'ping' }), 'pong');
  });

  it('refuses an in-band token that is bad, for another user, or for an anonymous connection, and changes nothing', T, async () => {
    const c = await connect(`${server.url}?token=${sign({ sub: 'ada', role: 'a', exp: now() + 3600 })}`);
    const other = await c.request({ op: 'auth', token: sign({ sub: 'mallory', exp: now() + 3600 }) });
    assert.equal(other.error.code, 'unauthorized');
    const bad = await c.request({ op: 'auth', token: 'garbage' });
    assert.equal(bad.error.code, 'unauthorized');
    const missing = await c.request({ op: 'auth' });
    assert.equal(missing.error.code, 'bad_request');
    const r = await who(c);
    assert.equal(r.userId, 'ada');
    assert.equal(r.claims.role, 'a');
    const anon = await connect(server.url);
    const up = await anon.request({ op: 'auth', token: sign({ sub: 'ada' }) });
    assert.equal(up.error.code, 'unauthorized');
    // A refresh updates the claims hooks see.
    await c.ok({ op: 'auth', token: sign({ sub: 'ada', role: 'b', exp: now() + 3600 }) });
    assert.equal((await c.ok({ op: 'call', room: 'whoami:1', method: 'who' })).claims.role, 'b');
  });
});

describe('tokens: --require-auth, public keys, audience and issuer', () => {
  after(cleanup);

  it('--require-auth refuses an upgrade without a token with 401', T, async () => {
    const server = await startServer({ args: ['--jwt-secret', SECRET, '--require-auth'] });
    assert.equal(await upgradeStatus(server.url), 401);
    const c = await connect(`${server.url}?token=${sign({ sub: 'ada' })}`);
    assert.equal(c.welcome.userId, 'ada');
  });

  it('RS256 and ES256 with --jwt-public-key; the HS256-with-the-public-key confusion is refused', T, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-keys-'));
    for (const [alg, type, opts] of [['RS256', 'rsa', { modulusLength: 2048 }], ['ES256', 'ec', { namedCurve: 'P-256' }]]) {
      const { privateKey, publicKey } = crypto.generateKeyPairSync(type, opts);
      const pem = publicKey.export({ type: 'spki', format: 'pem' });
      const file = path.join(dir, `${alg}.pem`);
      fs.writeFileSync(file, pem);
      const server = await startServer({ args: ['--jwt-public-key', file, '--jwt-audience', 'game', '--jwt-issuer', 'https://id.example'] });
      const claims = { sub: 'ada', aud: ['web', 'game'], iss: 'https://id.example' };
      const c = await connect(`${server.url}?token=${sign(claims, { alg, key: privateKey })}`);
      assert.equal(c.welcome.userId, 'ada', alg);
      assert.equal(await upgradeStatus(`${server.url}?token=${sign(claims, { alg: 'HS256', key: pem })}`), 401, `${alg}: HS256 signed with the PEM`);
      assert.equal(await upgradeStatus(`${server.url}?token=${sign({ ...claims, aud: 'web' }, { alg, key: privateKey })}`), 401, `${alg}: wrong aud`);
      assert.equal(await upgradeStatus(`${server.url}?token=${sign({ ...claims, iss: 'https://evil.example' }, { alg, key: privateKey })}`), 401, `${alg}: wrong iss`);
      await server.stop();
    }
  });

  it('a server with no key refuses a token rather than ignoring it, and bad key settings stop the start', T, async () => {
    const server = await startServer();
    assert.equal(await upgradeStatus(`${server.url}?token=${sign({ sub: 'ada' })}`), 401);
    assert.equal(await upgradeStatus(server.url), 101);
    const garbage = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-keys-')), 'bad.pem');
    fs.writeFileSync(garbage, 'not a key');
    for (const args of [['--require-auth'], ['--jwt-public-key', garbage], ['--jwt-secret', SECRET, '--jwt-public-key', garbage]]) {
      await assert.rejects(startServer({ args }), /exited \(2\)/, args.join(' '));
    }
  });
});

describe('origins', () => {
  let server;
  before(async () => {
    server = await startServer({ args: ['--allowed-origins', 'https://app.example.com, https://*.example.org'] });
  });
  after(cleanup);

  it('lets allowed origins and patterns in, refuses others with 403, allows no Origin', T, async () => {
    assert.equal(await upgradeStatus(server.url, { headers: { Origin: 'https://app.example.com' } }), 101);
    assert.equal(await upgradeStatus(server.url, { headers: { Origin: 'https://eu.shop.example.org' } }), 101);
    assert.equal(await upgradeStatus(server.url), 101, 'not a browser');
    for (const origin of ['https://evil.example', 'https://example.org', 'http://app.example.com',
      'https://app.example.com.evil.example', 'https://app.example.com:8443', 'null']) {
      assert.equal(await upgradeStatus(server.url, { headers: { Origin: origin } }), 403, origin);
    }
  });

  it('refuses cross-site WebSocket hijacking: a foreign Origin carrying a session cookie', T, async () => {
    assert.equal(await upgradeStatus(server.url, {
      headers: { Origin: 'https://attacker.example', Cookie: 'session=victim-session' },
    }), 403);
  });

  it('checks the HTTP API write routes too, not its reads', T, async () => {
    const post = await server.http('POST', '/api/rooms/lobby/emit', { event: 'x', data: {} }, { Origin: 'https://evil.example' });
    assert.equal(post.status, 403);
    const ok = await server.http('POST', '/api/rooms/lobby/emit', { event: 'x', data: {} }, { Origin: 'https://app.example.com' });
    assert.notEqual(ok.status, 403);
    const get = await server.http('GET', '/api/status', undefined, { Origin: 'https://evil.example' });
    assert.equal(get.status, 200);
  });

  it('--require-origin refuses requests without an Origin', T, async () => {
    const strict = await startServer({ args: ['--allowed-origins', 'https://app.example.com', '--require-origin'] });
    assert.equal(await upgradeStatus(strict.url), 403);
    assert.equal(await upgradeStatus(strict.url, { headers: { Origin: 'https://app.example.com' } }), 101);
  });
});

describe('connections per address', () => {
  after(cleanup);

  it('--max-connections-per-ip answers 429 past it, and a closed connection gives its place back', T, async () => {
    const server = await startServer({ args: ['--max-connections-per-ip', '3'] });
    const open = await Promise.all([1, 2, 3].map(() => connect(server.url)));
    assert.equal(await upgradeStatus(server.url), 429);
    open[0].ws.close(1000);
    await open[0].closed;
    await sleep(100);
    const again = await connect(server.url);
    assert.ok(again.welcome);
    const metrics = (await server.http('GET', '/metrics')).text;
    assert.match(metrics, /atrium_upgrades_refused_per_ip_total 1\b/);
  });
});

describe('the connection gate, rooms/_connect.lua', () => {
  let server;
  let rooms;
  const GATE = `
local Gate = {}
function Gate.onConnect(req)
  if req.query.banned then return false, "you are banned" end
  if req.origin and req.cookies.csrf ~= req.query.csrf then return false, "bad csrf token" end
  if req.query.boom then error("gate exploded") end
  if req.query.spin then while true do end end
  return { name = req.query.name or "guest", ip = req.ip, ua = req.headers["user-agent"] or false,
           viaToken = req.userId or false }
end
return Gate
`;
  before(async () => {
    rooms = tempRooms({ 'whoami.lua': WHOAMI, '_connect.lua': GATE });
    server = await startServer({ rooms, args: ['--jwt-secret', SECRET, '--cpu-budget-ms', '100'] });
  });
  after(cleanup);

  it('its table becomes ctx.user in every hook, and it sees ip, headers, query and the token', T, async () => {
    const c = await connect(`${server.url}?name=ada&token=${sign({ sub: 'u1' })}`, { headers: { 'User-Agent': 'gate-test' } });
    const r = await who(c);
    assert.equal(r.user.name, 'ada');
    assert.equal(r.user.ip, '127.0.0.1');
    assert.equal(r.user.ua, 'gate-test');
    assert.equal(r.user.viaToken, 'u1');
    assert.equal(r.userId, 'u1');
  });

  it('refuses with 403 and its reason; a CSRF check by cookie and page token', T, async () => {
    assert.equal(await upgradeStatus(`${server.url}?banned=1`), 403);
    const res = await fetch(`${server.origin}/ws?banned=1`, {
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64') },
    }).catch(() => null);
    if (res) assert.match(await res.text(), /you are banned/);
    assert.equal(await upgradeStatus(`${server.url}?csrf=abc`, { headers: { Origin: 'https://x.example', Cookie: 'csrf=zzz' } }), 403);
    assert.equal(await upgradeStatus(`${server.url}?csrf=abc`, { headers: { Origin: 'https://x.example', Cookie: 'csrf=abc' } }), 101);
  });

  it('fails closed: an error or a CPU-budget stop refuses the connection, and the server goes on', T, async () => {
    assert.equal(await upgradeStatus(`${server.url}?boom=1`), 503);
    const t0 = Date.now();
    assert.equal(await upgradeStatus(`${server.url}?spin=1`), 503);
    assert.ok(Date.now() - t0 < 5000);
    assert.match(server.stderr(), /gate_error .*gate exploded/);
    assert.equal(await upgradeStatus(server.url), 101);
  });

  it('is hot-reloaded: a gate that fails to load refuses everyone, a fixed one lets them in, a deleted one opens', T, async () => {
    const file = path.join(rooms, '_connect.lua');
    fs.writeFileSync(file, 'this is not lua');
    await waitFor(async () => (await upgradeStatus(server.url)) === 503);
    fs.writeFileSync(file, 'local G = {}\nfunction G.onConnect(req) return { name = "v2" } end\nreturn G\n');
    await waitFor(async () => (await upgradeStatus(server.url)) === 101);
    const c = await connect(server.url);
    assert.equal((await who(c, 'whoami:v2')).user.name, 'v2');
    fs.unlinkSync(file);
    await waitFor(async () => {
      const d = await connect(server.url);
      return (await who(d, `whoami:${Math.random().toString(36).slice(2)}`)).user === false;
    });
    const metrics = (await server.http('GET', '/metrics')).text;
    assert.ok(Number(/atrium_gate_refusals_total (\d+)/.exec(metrics)[1]) >= 4, metrics);
  });
});

async function waitFor(check, ms = 5000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(100);
  }
}
