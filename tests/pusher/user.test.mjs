// User authentication (pusher.signin()), server-to-user events (SDK sendToUser),
// terminate_connections and the watchlist.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startAtrium, makeApp, sdk, connected, until, nextEvent, uid, sleep, authServer, RawClient,
  PusherSDK, cleanup,
} from './helpers.mjs';

const app = makeApp('601');
let server;
let api;
let auth;
const users = new Map();            // socket_id -> user data the endpoint signs

before(async () => {
  server = await startAtrium({ apps: [app] });
  api = sdk(server, app);
  auth = await authServer(api, { user: (socketId) => users.get(socketId) ?? { id: `anon-${socketId}` } });
});
after(cleanup);

// A pusher-js client signed in as userData (an object with id, maybe watchlist).
async function signedIn(userData) {
  const p = await connected(server, app, {
    userAuthentication: { endpoint: auth.userEndpoint, transport: 'ajax' },
    channelAuthorization: { endpoint: auth.endpoint, transport: 'ajax' },
  });
  users.set(p.connection.socket_id, userData);
  p.signin();
  await until(() => p.user.user_data?.id === userData.id, 5000, `signin of ${userData.id}`);
  await until(() => p.user.serverToUserChannel?.subscribed, 5000, 'the #server-to-user- channel');
  return p;
}

describe('user authentication', { concurrency: true }, () => {
  it('signin, then sendToUser reaches every connection of that user and no one else', async () => {
    const id = uid('user-');
    const [a1, a2] = [await signedIn({ id, user_info: { name: 'A' } }), await signedIn({ id })];
    const other = await signedIn({ id: uid('other-') });
    assert.equal(a1.user.user_data.id, id);
    const g1 = nextEvent(a1.user, 'notify');
    const g2 = nextEvent(a2.user, 'notify');
    const seenOther = [];
    other.user.bind('notify', (d) => seenOther.push(d));
    const res = await api.sendToUser(id, 'notify', { text: 'for you' });
    assert.equal(res.status, 200);
    assert.deepEqual(await g1, { text: 'for you' });
    assert.deepEqual(await g2, { text: 'for you' });
    await sleep(300);
    assert.deepEqual(seenOther, []);
  });

  it('terminateUserConnections closes the user\'s connections only', async () => {
    const id = uid('bye-');
    const p = await signedIn({ id });
    const keep = await signedIn({ id: uid('stay-') });
    const states = [];
    p.connection.bind('state_change', (s) => states.push(s.current));
    const res = await api.terminateUserConnections(id);
    assert.equal(res.status, 200);
    await until(() => states.length > 0, 4000, 'the terminated connection to change state');
    assert.notEqual(states[0], 'connected');
    assert.equal(keep.connection.state, 'connected');
    // The raw view: the connection is closed by the server.
    const raw = await RawClient.open(server, app.key);
    const rid = uid('raw-');
    const ud = api.authenticateUser(raw.socketId, { id: rid });
    await raw.request({ event: 'pusher:signin', data: ud }, 'pusher:signin_success');
    await api.terminateUserConnections(rid);
    const closed = await raw.closedWithin(4000);
    assert.equal(closed.code, 4009, `close code ${closed.code} (${closed.reason})`);
    assert.equal(raw.frames.find((f) => f.event === 'pusher:error')?.data?.code, 4009);
  });

  it('pusher:signin_success carries user_data; a bad signature gets pusher:error 4009', async () => {
    const raw = await RawClient.open(server, app.key);
    const data = api.authenticateUser(raw.socketId, { id: 'zed', user_info: { n: 1 } });
    const ok = await raw.request({ event: 'pusher:signin', data }, (f) => /signin_success|pusher:error/.test(f.event));
    assert.equal(ok.event, 'pusher:signin_success', ok.raw);
    assert.deepEqual(JSON.parse(ok.data.user_data), { id: 'zed', user_info: { n: 1 } });

    const raw2 = await RawClient.open(server, app.key);
    const wrong = new PusherSDK({ appId: app.id, key: app.key, secret: 'wrong' })
      .authenticateUser(raw2.socketId, { id: 'zed' });
    const err = await raw2.request({ event: 'pusher:signin', data: wrong }, (f) => /signin_success|pusher:error/.test(f.event));
    assert.equal(err.event, 'pusher:error', err.raw);
    assert.equal(err.data.code, 4009, err.raw);
    assert.equal((await raw2.closedWithin(3000)).code, 4009);
  });

  it('#server-to-user- channels cannot be subscribed to without signing in as that user', async () => {
    const raw = await RawClient.open(server, app.key);
    const reply = await raw.request({ event: 'pusher:subscribe', data: { channel: '#server-to-user-victim' } },
      (f) => f.event === 'pusher:error' || /subscription_(succeeded|error)$/.test(f.event));
    assert.notEqual(reply.event, 'pusher_internal:subscription_succeeded', reply.raw);
    const mark = raw.mark();
    await api.sendToUser('victim', 'private-note', { s: 1 });
    await sleep(300);
    assert.equal(raw.frames.slice(mark).filter((f) => f.event === 'private-note').length, 0);
  });

  it('watchlist: online when a watched user signs in, offline when they leave', async () => {
    const watched = uid('friend-');
    const watcher = await signedIn({ id: uid('watcher-'), watchlist: [watched] });
    const online = nextEvent(watcher.user.watchlist, 'online', 5000);
    const friend = await signedIn({ id: watched });
    const on = await online;
    assert.deepEqual(on.user_ids, [watched]);
    const offline = nextEvent(watcher.user.watchlist, 'offline', 8000);
    friend.disconnect();
    const off = await offline;
    assert.deepEqual(off.user_ids, [watched]);
  });

  it('watchlist: a watched user already online is reported at signin', async () => {
    const watched = uid('early-');
    await signedIn({ id: watched });
    const p = await connected(server, app, { userAuthentication: { endpoint: auth.userEndpoint, transport: 'ajax' } });
    users.set(p.connection.socket_id, { id: uid('late-watcher-'), watchlist: [watched] });
    const online = nextEvent(p.user.watchlist, 'online', 5000);
    p.signin();
    assert.deepEqual((await online).user_ids, [watched]);
  });
});
