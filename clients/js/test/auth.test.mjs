// Tokens with the client against the real server (docs/protocol.md "Connecting: tokens,
// origins, TLS"): the userId a token gives, the in-band refresh a token function keeps
// doing before exp, and the reconnect that follows a 4003 when there is no refresh.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { AtriumError } from '../src/index.js';
import { until, sleep, tappedWebSocket, useServer } from './helpers.mjs';

const T = { timeout: 20000 };
const SECRET = 'client-test-secret-of-32-bytes-or-more';
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

function sign(payload) {
  const data = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${data}.${crypto.createHmac('sha256', SECRET).update(data).digest('base64url')}`;
}
const soon = (s) => Math.floor(Date.now() / 1000) + s;

describe('tokens', () => {
  const ctx = useServer({ server: { args: ['--jwt-secret', SECRET] }, client: { minReconnectDelay: 20, maxReconnectDelay: 200 } });

  it('a token gives the connection its userId', T, async () => {
    const c = await ctx.open({ token: sign({ sub: 'ada' }) });
    assert.equal(c.userId, 'ada');
  });

  it('a token function refreshes in band before exp: the same connection outlives its first token', T, async () => {
    let calls = 0;
    const tap = tappedWebSocket();
    const c = await ctx.open({ WebSocket: tap.WebSocket, token: () => { calls += 1; return sign({ sub: 'ada', exp: soon(3) }); } });
    const id = c.id;
    await sleep(4500);
    assert.equal(c.status, 'open');
    assert.equal(c.id, id, 'no reconnect: the same connection');
    assert.ok(calls >= 2, `the token function ran again (${calls})`);
    assert.ok(tap.last().sent.some((m) => m.op === 'auth'), 'an auth op went out');
  });

  it('without a refresh, the server closes at exp with 4003 and the client treats it as a drop', T, async () => {
    const tap = tappedWebSocket();
    // A plain string token cannot be refreshed: the connection ends at its exp.
    const c = await ctx.open({ WebSocket: tap.WebSocket, token: sign({ sub: 'bob', exp: soon(2) }) });
    const closed = new Promise((resolve) => { tap.last().ws.on('close', (code, reason) => resolve([code, String(reason)])); });
    assert.deepEqual(await closed, [4003, 'token expired']);
    await until(() => c.status === 'reconnecting', 'reconnecting');
    await c.close();
  });

  it('auth() with a token for another user is refused and changes nothing', T, async () => {
    const c = await ctx.open({ token: sign({ sub: 'ada', exp: soon(3600) }) });
    const err = await c.auth(sign({ sub: 'mallory' })).catch((e) => e);
    assert.ok(err instanceof AtriumError);
    assert.equal(err.code, 'unauthorized');
    assert.equal(await c.request('ping'), 'pong');
    await until(() => c.status === 'open', 'still open');
  });
});
