// Durable rooms over real restarts (docs/rooms.md "Durable rooms"): a room with
// options.persist keeps its state, meta, epoch and seq across SIGTERM and kill -9, seats
// held across a restart are resumed, and a damaged file is restored or refused with a
// message naming it, never a crash. The kill -9 loop runs ATRIUM_KILL_CYCLES times
// (5 here; 100 is the long run of bench/README.md "Durable rooms").
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

import { BIN, cleanup, here, sleep, startServer, uid } from './helpers.mjs';

const T = { timeout: 120000 };
const CYCLES = Number(process.env.ATRIUM_KILL_CYCLES ?? 5);

function dataDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'atrium-durable-'));
}

async function roomOf(server, room) {
  const res = await server.http('GET', `/api/rooms/${room}`);
  assert.equal(res.status, 200, res.text);
  return res.json;
}

async function kill9(server) {
  server.child.kill('SIGKILL');
  await server.exited;
}

describe('durable rooms', () => {
  after(cleanup);

  it('keep state, meta, epoch and seq across kill -9, and run onRestore', T, async () => {
    const data = dataDir();
    const args = ['--data', data];
    let server = await startServer({ args });
    const room = `ledger:${uid()}`;
    const a = await server.connect();
    const joined = await a.join(room);
    for (let i = 1; i <= 5; ++i) assert.equal(await a.act(room, 'add', `item ${i}`), i);
    await a.untilView(room, (s) => s.n === 5);
    const seen = a.view(room).seq;
    assert.ok(fs.existsSync(path.join(data, 'atrium.db')), 'the data directory was made on demand');
    await kill9(server);

    server = await startServer({ args });
    assert.match(server.output(), /store restored rooms=1 seats=1/);
    const back = await roomOf(server, room);
    assert.deepEqual(back.state.items, ['item 1', 'item 2', 'item 3', 'item 4', 'item 5']);
    assert.equal(back.state.restores, 1);
    assert.equal(back.epoch, joined.epoch);
    assert.ok(back.seq >= seen, `seq ${back.seq} continues from ${seen}`);
    const b = await server.connect();
    await b.join(room);
    assert.equal(await b.act(room, 'adds'), 5, 'the private meta came back too');
    const metrics = (await server.http('GET', '/metrics')).text;
    assert.match(metrics, /atrium_restored_rooms 1/);
    assert.match(metrics, /atrium_restore_seconds [0-9.e-]+/);
  });

  it('hold seats across a restart: the client resumes with its id, no leave and no join', T, async () => {
    const data = dataDir();
    const args = ['--data', data];
    let server = await startServer({ args });
    const room = `ledger:${uid()}`;
    const a = await server.connect();
    const b = await server.connect();
    const joined = await a.join(room);
    await b.join(room);
    await a.act(room, 'add', 'before');
    await a.untilView(room, (s) => s.n === 1);
    const { seq } = a.view(room);
    await server.stop();                                   // SIGTERM: 1001 to everyone
    assert.equal((await a.closed).code, 1001);
    assert.equal(a.log.find((m) => m.op === 'left'), undefined, 'a durable room sends no left at shutdown');

    server = await startServer({ args });
    const a2 = await server.connect();
    const from = a2.mark();
    const reply = await a2.request({ op: 'resume', session: a.welcome.session, rooms: { [room]: { seq, epoch: joined.epoch } } });
    assert.equal(reply.ok, true, reply.$line);
    assert.equal(reply.result.client, a.welcome.client);
    const entry = reply.result.rooms[room];
    assert.equal(entry.epoch, joined.epoch);
    const before = a2.log.slice(from).filter((m) => m.op !== 'reply');
    // onRestore changed the state after the restart: that patch is what it missed.
    if (entry.recovered) {
      assert.deepEqual(before.map((m) => [m.op, m.seq]),
        Array.from({ length: entry.seq - seq }, (_, i) => ['patch', seq + 1 + i]));
    } else {
      assert.deepEqual(before.map((m) => m.op), ['state']);
    }
    assert.equal(await a2.act(room, 'add', 'after'), 2);
    const state = (await roomOf(server, room)).state;
    assert.deepEqual(state.log, [`join ${a.welcome.client}`, `join ${b.welcome.client}`],
      'no hook saw a leave or a second join');
    assert.deepEqual(state.items, ['before', 'after']);
  });

  it('restart within the grace: 50 clients resume their seats, and no hook saw a leave', T, async () => {
    const data = dataDir();
    const args = ['--data', data];
    let server = await startServer({ args });
    const room = `ledger:${uid()}`;
    const clients = [];
    for (let i = 0; i < 50; ++i) clients.push(await server.connect());
    const joined = [];
    for (const c of clients) joined.push(await c.join(room));
    await clients[0].act(room, 'add', 'x');
    await server.stop();
    server = await startServer({ args });
    assert.match(server.output(), /store restored rooms=1 seats=50/);
    const back = await Promise.all(clients.map(async (c, i) => {
      const again = await server.connect();
      const r = await again.request({ op: 'resume', session: c.welcome.session,
        rooms: { [room]: { seq: joined[i].seq, epoch: joined[i].epoch } } });
      assert.equal(r.ok, true, r.$line);
      assert.equal(r.result.client, c.welcome.client);
      return again;
    }));
    const state = (await roomOf(server, room)).state;
    assert.equal(state.log.length, 50, 'fifty joins and nothing else');
    assert.ok(state.log.every((l) => l.startsWith('join ')), JSON.stringify(state.log));
    assert.equal((await server.http('GET', `/api/rooms/${room}/members`)).json.members.filter((m) => m.connected).length, 50);
    assert.equal(await back[7].act(room, 'add', 'y'), 2);
  });

  it(`lose nothing that got a reply through ${CYCLES} kill -9 at random moments under load`, { timeout: 60000 + CYCLES * 6000 }, async () => {
    const data = dataDir();
    const args = ['--data', data];
    const room = `ledger:${uid()}`;
    const acked = new Set();
    const seen = new Set();
    let epoch;
    let maxSeq = 0;
    for (let cycle = 0; cycle < CYCLES; ++cycle) {
      const server = await startServer({ args });
      const clients = await Promise.all([0, 1, 2].map(() => server.connect()));
      const results = await Promise.all(clients.map((c) => c.join(room)));
      for (const r of results) {
        epoch ??= r.epoch;
        assert.equal(r.epoch, epoch, `cycle ${cycle}: the epoch is unchanged`);
        assert.ok(r.seq >= maxSeq, `cycle ${cycle}: seq ${r.seq} does not go back from ${maxSeq}`);
        for (const item of acked) assert.ok(r.state.items.includes(item), `cycle ${cycle}: ${item} got a reply and is gone`);
        for (const item of seen) assert.ok(r.state.items.includes(item), `cycle ${cycle}: ${item} was in a patch and is gone`);
      }
      let stop = false;
      const load = clients.map(async (c, k) => {
        for (let i = 0; !stop; ++i) {
          const item = `${cycle}.${k}.${i}`;
          const reply = await c.request({ op: 'call', room, method: 'add', args: [item] }).catch(() => null);
          if (!reply) return;
          if (reply.ok) acked.add(item);
        }
      });
      await sleep(50 + Math.floor(Math.random() * 250));
      for (const c of clients) {
        for (const m of c.log) if (m.op === 'patch' && m.room === room) maxSeq = Math.max(maxSeq, m.seq);
        // What a client saw in a patch left the server after its commit: it must come back too.
        for (const item of c.view(room)?.state.items ?? []) seen.add(item);
      }
      server.child.kill('SIGKILL');
      stop = true;
      await server.exited;
      await Promise.all(load);
      for (const c of clients) c.terminate();
    }
    const server = await startServer({ args });
    const c = await server.connect();
    const last = await c.join(room);
    for (const item of acked) assert.ok(last.state.items.includes(item), `${item} got a reply and is gone`);
    assert.ok(last.seq >= maxSeq);
    assert.ok(acked.size > CYCLES * 3, `only ${acked.size} actions got a reply`);
  });

  it('a damaged file is restored to its last consistent commit or refused naming it, never a crash', { timeout: 120000 }, async () => {
    const data = dataDir();
    const args = ['--data', data];
    const server = await startServer({ args });
    const room = `ledger:${uid()}`;
    const a = await server.connect();
    await a.join(room);
    for (let i = 0; i < 40; ++i) await a.act(room, 'add', `x${i}`.repeat(20));
    await kill9(server);
    const db = path.join(data, 'atrium.db');
    const files = [db, `${db}-wal`].filter((f) => fs.existsSync(f));
    const pristine = new Map(files.map((f) => [f, fs.readFileSync(f)]));
    let restored = 0, refused = 0;
    const offsets = (n) => [0, 1, 16, 100, 4096, 4097, Math.floor(n / 3), Math.floor(n / 2), n - 1]
      .filter((o) => o >= 0 && o < n);
    for (const file of files) {
      const bytes = pristine.get(file);
      for (const at of offsets(bytes.length)) {
        for (const damage of ['truncate', 'flip']) {
          for (const [f, b] of pristine) fs.writeFileSync(f, b);
          if (damage === 'truncate') fs.truncateSync(file, at);
          else {
            const copy = Buffer.from(bytes);
            for (let k = at; k < Math.min(at + 64, copy.length); ++k) copy[k] ^= 0x5a;
            fs.writeFileSync(file, copy);
          }
          const r = spawnSync(BIN, ['serve', '--rooms', 'rooms', '--port', '0', '--data', data], {
            cwd: here, timeout: 3000, encoding: 'utf8', killSignal: 'SIGTERM',
          });
          const what = `${path.basename(file)} ${damage} at ${at}: status ${r.status} signal ${r.signal}\n${r.stderr}`;
          // Either it listened (killed by our timeout with SIGTERM, then exited 0) or it
          // refused with 2 and a message naming the file. Never a crash signal.
          if (/atrium listening on/.test(r.stdout)) {
            ++restored;
            assert.ok(r.status === 0 || r.signal === 'SIGTERM', what);
          } else {
            ++refused;
            assert.equal(r.status, 2, what);
            assert.match(r.stderr, /atrium\.db/, what);
          }
        }
      }
    }
    assert.ok(restored > 0 && restored + refused > 10, `restored ${restored}, refused ${refused}`);
  });
});
