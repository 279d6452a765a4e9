// atrium-client: the public entry (browser bundle and Node). See docs/client.md.
export { connect, Client, Room, Watch, AtriumError, backoff, resolveUrl, PROTOCOL, MSGPACK_PROTOCOL } from './client.js';
