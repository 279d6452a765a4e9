// Type declarations for atrium-client (docs/client.md is the contract).

/** Any JSON value the server sends or accepts. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One RFC 6902 operation as the server sends them (add, remove, replace). */
export interface PatchOp {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: Json;
  from?: string;
}

/** Server codes (docs/protocol.md "Error codes") and the client's own. */
export type ErrorCode =
  | 'bad_json' | 'bad_request' | 'unknown_op' | 'unauthorized' | 'not_found' | 'join_rejected'
  | 'room_full' | 'server_join_only' | 'not_member' | 'already_member' | 'unknown_method'
  | 'not_allowed' | 'script_error' | 'budget_exceeded' | 'rate_limited' | 'too_large' | 'internal'
  // the client's own:
  | 'closed' | 'disconnected' | 'timeout' | 'connect_failed' | 'no_websocket'
  | (string & {});

export class AtriumError extends Error {
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; where?: string });
  readonly name: 'AtriumError';
  readonly code: ErrorCode;
  /** Where in the room script the error was raised ("rooms/ttt.lua:54"), when the server
   *  said (script errors); undefined otherwise. */
  readonly where: string | undefined;
}

/** The minimal WebSocket the client needs: the browser's, Node 22's global, or the `ws` package. */
export interface WebSocketLike {
  binaryType: string;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface ConnectOptions {
  /** A JWT for `?token=`; a function is called before every (re)connect, and again before the token's exp to refresh it in band. */
  token?: string | null | (() => string | null | undefined | Promise<string | null | undefined>);
  /** The WebSocket class; defaults to globalThis.WebSocket (pass `ws` in Node < 22). */
  WebSocket?: WebSocketConstructor | (new (...args: any[]) => any);
  /** Reconnect after a drop (default true). */
  reconnect?: boolean;
  /** Backoff bounds in ms (defaults 500 and 20000; full jitter). */
  minReconnectDelay?: number;
  maxReconnectDelay?: number;
  /** ms to wait for a reply, and for a new connection's `welcome` (default 10000). */
  timeout?: number;
  /** Subprotocols offered (default ['atrium.v1'], or ['atrium.v1.msgpack'] with encoding 'msgpack'). */
  protocols?: string | string[];
  /** How to reach the server (default ['websocket', 'http']): a WebSocket, and the HTTP
   *  fallback (an event stream and POSTs) when there is none, its upgrade is refused, or no
   *  welcome comes within fallbackAfter ms. ['http'] forces the fallback. */
  transports?: Array<'websocket' | 'http'>;
  /** ms the first WebSocket attempt may take before the HTTP fallback is tried (default 3000). */
  fallbackAfter?: number;
  /** The fetch the HTTP fallback uses (default globalThis.fetch). */
  fetch?: (input: string, init?: object) => Promise<any>;
  /** 'json' (default) or 'msgpack': the same frames as MessagePack in binary messages, decoded
   *  with @msgpack/msgpack (loaded only then). */
  encoding?: 'json' | 'msgpack';
  /** The @msgpack/msgpack module (or anything with its encode and decodeMulti), for
   *  encoding 'msgpack' where the package cannot be imported by name (the browser builds). */
  msgpack?: { encode(value: unknown): Uint8Array; decodeMulti(bytes: Uint8Array | ArrayBuffer): Iterable<unknown> };
}

export type Status = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Why a room (or a watch) ended for this client. */
export type LeftReason =
  | 'leave'        // room.leave() or client.close()
  | 'kicked'       // the script kicked this client (message: its reason)
  | 'closed'       // the room was closed or is gone
  | 'disconnect'   // the connection dropped and reconnect is off
  | 'rejected'     // the rejoin after a reconnect was refused (message: why)
  | 'replaced'     // a new join of the same id replaced this Room object; or another
                   // connection resumed this client's session (close 4002, message
                   // 'session resumed elsewhere'): the client is closed
  | 'unwatch'      // watch.unwatch()
  | (string & {});

export interface RoomEvent<D = Json> {
  event: string;
  data: D;
  /** The sender's client id, when a client sent it. */
  from?: string;
}

interface ViewEvents<S> {
  /** After every patch (with its ops) and whenever the whole state is replaced (ops undefined). */
  state: (state: S, ops: PatchOp[] | undefined) => void;
  left: (reason: LeftReason, message?: string) => void;
  /** A resync that failed for a reason other than the connection. */
  error: (err: AtriumError) => void;
}

interface RoomEvents<S> extends ViewEvents<S> {
  event: (ev: RoomEvent) => void;
  /** After a reconnect, the server resumed this client's seat: `recovered` is true when it sent
   *  exactly the patches missed, false when it sent the whole state. Fires when the resume's
   *  reply comes, after those patches or that state. A room rejoined instead fires only 'state'. */
  resumed: (info: { recovered: boolean }) => void;
}

declare class Listeners<E> {
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(name: K, fn: E[K]): () => void;
  once<K extends keyof E>(name: K, fn: E[K]): () => void;
  /** Removes one listener, or every listener of that name. */
  off<K extends keyof E>(name: K, fn?: E[K]): void;
}

/** Made by client.join() and by server-side joins (client 'joined'), never with `new`. */
export class Room<S = any> extends Listeners<RoomEvents<S>> {
  private constructor();
  readonly client: Client;
  readonly id: string;
  /** The room incarnation `seq` belongs to: an opaque string, new whenever the room is created
   *  again under the same id (undefined from a server that sends none). */
  readonly epoch: string | undefined;
  /** The seq of `state`: patches take it from seq to seq + 1. */
  readonly seq: number;
  /** The room's public state, kept current by patches (updated in place). */
  readonly state: S;
  /** After the latest reconnect: true when the seat was resumed with only the patches missed,
   *  false when the state was replaced (a `state` from the resume, or a rejoin); undefined
   *  before any reconnect. */
  readonly recovered: boolean | undefined;
  /** false once the client is out of the room ('left' fired). */
  readonly joined: boolean;
  /** true when server-side code placed this client here (client 'joined'). */
  readonly placed: boolean;
  /** Calls an action; resolves with its result. */
  call<R = any>(method: string, ...args: Json[]): Promise<R>;
  /** Sends an event; the promise may be ignored. */
  emit(event: string, data?: Json): Promise<void>;
  /** Asks for the full state again; resolves with it. */
  sync(): Promise<S>;
  leave(): Promise<void>;
}

/** Made by client.watch(). */
interface WatchEvents<S> extends ViewEvents<S> {
  /** An event the room sent its members (not one sent to a single member). */
  event: (ev: RoomEvent) => void;
  /** A call into the room's script failed: where it ran ("action 'move'", "onJoin"), the
   * error its caller got, and the server's traceback. */
  fault: (fault: { in: string; error: AtriumError; traceback: string }) => void;
}

export class Watch<S = any> extends Listeners<WatchEvents<S>> {
  private constructor();
  readonly client: Client;
  readonly id: string;
  readonly epoch: string | undefined;
  readonly seq: number;
  readonly state: S;
  readonly active: boolean;
  unwatch(): Promise<void>;
}

interface ClientEvents {
  /** Server-side code placed this client in a room. */
  joined: (room: Room) => void;
  status: (status: 'open' | 'reconnecting' | 'closed') => void;
  /** An `error` frame, or a line that was not JSON. */
  error: (err: AtriumError) => void;
  /** A frame of an op this client does not know. */
  frame: (msg: { op: string; [key: string]: unknown }) => void;
}

/** Made by connect(). */
export class Client extends Listeners<ClientEvents> {
  private constructor();
  readonly url: string;
  readonly status: Status;
  /** The client id from `welcome` ("c12"); after a resume, still the old connection's. */
  readonly id: string;
  /** The secret for `resume`; after a resume, still the old connection's. */
  readonly session: string;
  readonly userId: string | null;
  readonly server: string | null;
  /** The server's heartbeat interval in ms. */
  readonly heartbeat: number;
  readonly rooms: ReadonlyMap<string, Room>;
  readonly watches: ReadonlyMap<string, Watch>;
  /** Joins (creates) a room; rejects with AtriumError (join_rejected, room_full, ...). */
  join<S = any>(id: string, payload?: { [key: string]: Json }): Promise<Room<S>>;
  /** The joined room with this id. */
  room<S = any>(id: string): Room<S> | undefined;
  /** Follows a room without joining (admin token when the server has one). */
  watch<S = any>(id: string, options?: { token?: string | null }): Promise<Watch<S>>;
  /** A fresh token for this connection's user, sent in band (op `auth`); with a token function the client does it itself before exp. */
  auth(token: string): Promise<void>;
  /** Round trip in ms. */
  ping(): Promise<number>;
  /** Any request by op name; resolves with the reply's result. */
  request<R = any>(op: string, fields?: { [key: string]: Json | undefined }): Promise<R>;
  /** Closes for good; resolves when the socket is closed. */
  close(): Promise<void>;
}

/** Connects; resolves once the server said `welcome`. url defaults to the page's /ws; a
 *  ws(s) or http(s) URL with no path (or the path '/') connects to its /ws. */
export function connect(url?: string, options?: ConnectOptions): Promise<Client>;

/** Full-jitter backoff: min + random(0, min(max, min * 2^step)), at most max. */
export function backoff(step: number, min: number, max: number): number;
/** ws(s)://... from a ws, http or page-relative url; no path or '/' becomes '/ws'. */
export function resolveUrl(url?: string): string;
export const PROTOCOL: 'atrium.v1';
export const MSGPACK_PROTOCOL: 'atrium.v1.msgpack';
