// Bad input never costs the connection (or the server) except where docs/protocol.md says so:
// 1009 for a message over the limit, 1007 for invalid UTF-8.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, cleanup, connectMany, uid } from './helpers.mjs';

const T = { timeout: 20000 };

// The error for a frame: an `error` frame, or a failed reply when the server could read a ref.
function failure(code) {
  return (m) => (m.op === 'error' || (m.op === 'reply' && m.ok === false)) && m.error?.code === code;
}

async function stillServes(client) {
  assert.equal(await client.ok({ op: 'ping' }), 'pong', 'the connection stays usable');
}

describe('bad input', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(cleanup);

  it('answers text that is not JSON with an error frame bad_json and keeps the connection', T, async () => {
    const [a] = await connectMany(server, 1);
    for (const text of ['{"op":', 'not json', '{"op":"ping",}', '']) {
      a.send(text);
      const e = await a.next((m) => m.op === 'error');
      assert.equal(e.error.code, 'bad_json', `for ${JSON.stringify(text)}: ${e.$line}`);
      assert.equal(typeof e.error.message, 'string');
    }
    await stillServes(a);
  });

  it('answers valid JSON that is not an object with bad_request', T, async () => {
    const [a] = await connectMany(server, 1);
    for (const text of ['[1,2]', '"ping"', '42', 'null', 'true']) {
      a.send(text);
      const e = await a.next((m) => m.op === 'error' || m.op === 'reply');
      assert.equal(e.error?.code, 'bad_request', `for ${text}: ${e.$line}`);
    }
    await stillServes(a);
  });

  it('answers an unknown op with unknown_op, as a reply when it has a ref and an error frame without', T, async () => {
    const [a] = await connectMany(server, 1);
    await a.fails({ op: 'dance' }, 'unknown_op');
    a.send({ op: 'dance' });
    const e = await a.next((m) => m.op === 'error');
    assert.equal(e.error.code, 'unknown_op');
    await stillServes(a);
  });

  it('answers missing or ill-typed fields with bad_request', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `secret:${uid()}`;
    await a.join(room);
    const cases = [
      { ref: 'x' },
      { op: 42 },
      { op: null },
      { op: 'join' },
      { op: 'join', room: 5 },
      { op: 'join', room: ['secret:x'] },
      { op: 'leave' },
      { op: 'sync' },
      { op: 'call', room },
      { op: 'call', room, method: 5, args: [] },
      { op: 'call', room, method: 'isLocked', args: 'not an array' },
      { op: 'call', room, method: 'isLocked', args: { 0: 1 } },
      { op: 'emit', room },
      { op: 'emit', room, event: 42 },
    ];
    for (const c of cases) {
      const reply = await a.request(c);
      assert.equal(reply.ok, false, `${JSON.stringify(c)} must fail`);
      assert.equal(reply.error.code, 'bad_request', `${JSON.stringify(c)}: ${reply.$line}`);
    }
    assert.equal(await a.act(room, 'isLocked'), false, 'still a member, nothing changed');
  });

  it('answers a ref that is neither a number nor a string with bad_request', T, async () => {
    const [a] = await connectMany(server, 1);
    for (const ref of [{}, [1], true]) {
      a.send({ op: 'ping', ref });
      const e = await a.next((m) => m.op === 'error' || m.op === 'reply');
      assert.equal(e.error?.code, 'bad_request', `ref ${JSON.stringify(ref)}: ${e.$line}`);
    }
    await stillServes(a);
  });

  it('answers room ids outside 1..128 bytes of [A-Za-z0-9_.:@-] or with an empty part with bad_request', T, async () => {
    const [a] = await connectMany(server, 1);
    const bad = ['', 'x'.repeat(129), `a:${'x'.repeat(127)}`, 'a b', 'chat:lo/bby', 'chat:é', 'é',
      ':x', 'x:', ':', '::', 'tab\there', 'chat:lobby#1', 'chat%3Alobby', 'chat:lobby\n', 'chat:lob"by'];
    for (const room of bad) {
      const err = await a.fails({ op: 'join', room }, 'bad_request');
      assert.ok(err.message.length > 0);
    }
    for (const op of ['leave', 'sync']) await a.fails({ op, room: ':x' }, 'bad_request');
    await a.fails({ op: 'emit', room: 'x:', event: 'e' }, 'bad_request');
    await a.fails({ op: 'call', room: 'a b', method: 'm', args: [] }, 'bad_request');
  });

  it('accepts room ids at the edges of the rules', T, async () => {
    const [a] = await connectMany(server, 1);
    const good = ['x'.repeat(128), `secret:${'y'.repeat(121)}`, `secret:b:c${uid()}`,
      `secret:A-Z_0.9@x:y.z-${uid()}`, 'q', `A-Z_0.9@x.y-${uid()}`];
    for (const room of good) {
      const r = await a.join(room);
      assert.equal(r.room, room);
      assert.equal(Buffer.byteLength(room) <= 128, true);
    }
  });

  it('answers not_found for a TYPE with no script: a typo opens no room', T, async () => {
    const [a] = await connectMany(server, 1);
    const err = await a.fails({ op: 'join', room: `tictactoe:${uid()}` }, 'not_found');
    assert.match(err.message, /^no room type 'tictactoe': \S*tictactoe\.lua does not exist$/);
  });

  it('treats a:b:c as type a with instance b:c (split at the first colon)', T, async () => {
    const [a] = await connectMany(server, 1);
    const room = `secret:x:${uid()}`;
    const r = await a.join(room);
    assert.deepEqual(r.state, { members: 1, locked: false }, 'the secret script ran');
  });

  it('answers JSON nested deeper than 64 levels with bad_json and keeps the connection', T, async () => {
    const [a] = await connectMany(server, 1);
    a.send(`{"op":"ping","ref":"deep","x":${'['.repeat(100)}${']'.repeat(100)}}`);
    const e = await a.next(failure('bad_json'));
    assert.ok(e);
    a.send(`${'['.repeat(30000)}${']'.repeat(30000)}`);      // deep, yet under the 64 KiB limit
    await a.next(failure('bad_json'));
    await stillServes(a);
  });

  it('accepts JSON nested exactly 64 levels deep and rejects 65', T, async () => {
    const [a] = await connectMany(server, 1);
    // The top-level object is level 1, so 63 arrays inside it make 64 levels.
    const at64 = `{"op":"ping","ref":"d64","x":${'['.repeat(63)}${']'.repeat(63)}}`;
    a.send(at64);
    const r64 = await a.next((m) => m.ref === 'd64' || m.op === 'error');
    assert.equal(r64.result, 'pong', `64 levels: ${r64.$line}`);
    const at65 = `{"op":"ping","ref":"d65","x":${'['.repeat(64)}${']'.repeat(64)}}`;
    a.send(at65);
    await a.next(failure('bad_json'));
  });

  it('survives the RapidJSON CVE-2024-38517 number and answers the next request', T, async () => {
    const [a] = await connectMany(server, 1);
    a.send('{"op":"ping","ref":0.0000074836628E-2147483636}');
    a.send('{"op":"ping","x":0.0000074836628E-2147483636,"ref":"after-x"}');
    a.send('{"op":"ping","ref":"after"}');
    const r = await a.next({ op: 'reply', ref: 'after' });
    assert.equal(r.result, 'pong');
    const health = await server.http('GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(server.child.exitCode, null, 'the server process is alive');
  });

  it('closes with 1009 on a message over 64 KiB', T, async () => {
    const [a, b] = await connectMany(server, 2);
    a.send(JSON.stringify({ op: 'ping', ref: 1, pad: 'x'.repeat(70 * 1024) }));
    const { code } = await a.closedWithin(5000);
    assert.equal(code, 1009);
    await stillServes(b);
  });

  it('accepts a message of exactly 65536 bytes and closes with 1009 at 65537', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const msg = (size, ref) => {
      const head = `{"op":"ping","ref":"${ref}","pad":"`;
      return `${head}${'p'.repeat(size - head.length - 2)}"}`;
    };
    assert.equal(Buffer.byteLength(msg(65536, 'max')), 65536);
    a.send(msg(65536, 'max'));
    assert.equal((await a.next({ op: 'reply', ref: 'max' })).result, 'pong');
    b.send(msg(65537, 'over'));
    assert.equal((await b.closedWithin(5000)).code, 1009);
  });

  it('counts the size of a fragmented message after reassembly', T, async () => {
    const [a, b] = await connectMany(server, 2);
    const whole = JSON.stringify({ op: 'ping', ref: 'frag', pad: 'f'.repeat(30000) });
    const third = Math.ceil(whole.length / 3);
    await a.sendRaw(whole.slice(0, third), { fin: false });
    await a.sendRaw(whole.slice(third, 2 * third), { fin: false });
    await a.sendRaw(whole.slice(2 * third), { fin: true });
    assert.equal((await a.next({ op: 'reply', ref: 'frag' })).result, 'pong');

    const chunk = 'g'.repeat(30000);
    await b.sendRaw(`{"op":"ping","ref":"big","pad":"${chunk}`, { fin: false });
    await b.sendRaw(chunk, { fin: false });
    await b.sendRaw(`${chunk}"}`, { fin: true }).catch(() => {});
    assert.equal((await b.closedWithin(5000)).code, 1009);
  });

  it('closes with 1007 on a text frame that is not UTF-8', T, async () => {
    const [a, b] = await connectMany(server, 2);
    await a.sendRaw(Buffer.from([0x7b, 0xff, 0x7d]), { binary: false });
    assert.equal((await a.closedWithin(5000)).code, 1007);
    await stillServes(b);
  });

  it('closes with 1007 on invalid UTF-8 inside a JSON string of an otherwise valid message', T, async () => {
    const [a] = await connectMany(server, 1);
    const bytes = Buffer.concat([Buffer.from('{"op":"ping","ref":"u","x":"'), Buffer.from([0xc3, 0x28]),
      Buffer.from('"}')]);
    await a.sendRaw(bytes, { binary: false });
    assert.equal((await a.closedWithin(5000)).code, 1007);
  });

  it('closes with 1007 on UTF-8-encoded surrogate code points', T, async () => {
    const [a] = await connectMany(server, 1);
    const bytes = Buffer.concat([Buffer.from('{"op":"ping","ref":"s","x":"'), Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from('"}')]);
    await a.sendRaw(bytes, { binary: false });
    assert.equal((await a.closedWithin(5000)).code, 1007);
  });

  it('answers a binary frame with bad_request and keeps the connection', T, async () => {
    const [a] = await connectMany(server, 1);
    await a.sendRaw(Buffer.from('{"op":"ping","ref":"bin"}'), { binary: true });
    const e = await a.next(failure('bad_request'));
    assert.ok(e);
    assert.equal(a.log.some((m) => m.op === 'reply' && m.ok === true && m.ref === 'bin'), false,
      'a binary frame is not read as JSON');
    await stillServes(a);
  });

  it('answers resume with an unknown session with a failed reply and keeps the connection', T, async () => {
    const [a] = await connectMany(server, 1);
    const reply = await a.request({ op: 'resume', session: 'no-such-session', rooms: {} });
    assert.equal(reply.ok, false);
    await stillServes(a);
  });
});
