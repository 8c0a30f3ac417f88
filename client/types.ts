// Types of the client, derived from a server route definition by inference alone. Every
// import here is `import type`: nothing of the server reaches the browser bundle.
import type { AnyAction, AnyChannel, AuthVia } from '../types/route.js'
import type { StaticOf, WsxSchema } from '../types/schema.js'
import type { WsxClientError } from './errors.js'

/**
 * What the client reads from a route definition: its actions, events and channels. Any
 * `typeof route` of a `defineRoute()` result fits, as does a hand-written type of the same shape.
 */
export interface RouteShape {
  actions: Record<string, AnyAction>
  channels?: Record<string, AnyChannel>
  events?: Record<string, WsxSchema>
  schema?: { params?: WsxSchema, querystring?: WsxSchema }
}

type RouteSchema<R, Part extends string> = Field<Field<R, 'schema'>, Part>
/** The route's path params, from its `schema.params`: what `params` fills `:name` segments with. */
export type RouteParams<R> = StaticOr<RouteSchema<R, 'params'>, Record<string, string | number>>
/** The route's querystring, from its `schema.querystring`. */
export type RouteQuery<R> = StaticOr<RouteSchema<R, 'querystring'>, Record<string, string | number | boolean>>

/** The value of key `P` of `T` (required or optional) without `undefined`; `unknown` when absent. */
type Field<T, P extends string> = T extends { [Q in P]?: infer V } ? Exclude<V, undefined> : never
/** `T[K]` when `K` is a key of `T`, else `never`. */
type Get<T, K> = K extends keyof T ? T[K] : never
/** `Static<S>` when `S` is a schema, else `Fallback` (no schema declared). */
type StaticOr<S, Fallback> = [S] extends [never] ? Fallback
  // an untyped client (`any` action): anything goes, as before
  : 0 extends (1 & S) ? S
  // `WsxSchema` itself (a route shape, not a route): nothing specific to read
    : [WsxSchema] extends [S] ? Fallback
        : [S] extends [WsxSchema] ? StaticOf<S> : Fallback
type IsSchema<S> = [S] extends [never] ? false : [S] extends [WsxSchema] ? true : false
/** A map of schemas to a map of their static types. */
type StaticMap<M> = M extends Record<string, WsxSchema> ? { [K in keyof M & string]: StaticOf<M[K]> } : {}
type KeysOfUnion<T> = T extends unknown ? keyof T : never
type ValueOfUnion<T, K> = T extends unknown ? (K extends keyof T ? T[K] : never) : never

type Actions<R> = Field<R, 'actions'>
type Channels<R> = Field<R, 'channels'>
type ActionOf<R, K> = Get<Actions<R>, K>

/** The route's action names, e.g. `'chat.send'`. */
export type ActionName<R> = keyof Actions<R> & string

/** Data of an action without a request schema: nothing, or an empty object. */
export type NoData = Record<string, never>

/** The `data` an action's request takes: `Static` of its `request` schema. */
export type RequestData<R, K> = StaticOr<Field<ActionOf<R, K>, 'request'>, NoData | undefined>

/** The result of the handler, for actions without a response schema. */
type HandlerResult<A> = A extends { handler: (...args: never[]) => infer T } ? Awaited<T> : unknown

/** The reply's `data`: `Static` of the `response` schema, else what the handler returns. */
export type ReplyData<R, K> = StaticOr<Field<ActionOf<R, K>, 'response'>, HandlerResult<ActionOf<R, K>>>

/** Options of one request. */
export interface RequestOptions {
  /** Overrides the client's `requestTimeoutMs`. */
  timeoutMs?: number
  /** Sent as `trace_id` (at most 128 characters); the server makes one when absent. */
  traceId?: string
}

/** `request()`'s arguments after the action: `data` is optional when the action declares no request schema. */
export type RequestArgs<R, K> = IsSchema<Field<ActionOf<R, K>, 'request'>> extends true
  ? [data: RequestData<R, K>, options?: RequestOptions]
  : [data?: NoData, options?: RequestOptions]

/** The route's channel names. */
export type ChannelName<R> = keyof Channels<R> & string
/** The params of channel `C`: `Static` of its `params` schema. */
export type ChannelParams<R, C> = StaticOr<Field<Get<Channels<R>, C>, 'params'>, Record<string, unknown>>
/** Event name → data of channel `C`. */
export type ChannelEventMap<R, C> = StaticMap<Field<Get<Channels<R>, C>, 'events'>>

/** One event of a subscription, as its listener gets it. */
export interface SubscriptionEvent<Action extends string, Data, C extends string, P> {
  action: Action
  data: Data
  channel: C
  params: P
  traceId?: string
}

/** The events of channel `C`, as a union discriminated by `action` (untyped when the channel declares none). */
export type ChannelEvent<R, C extends string> = [keyof ChannelEventMap<R, C>] extends [never]
  ? SubscriptionEvent<string, unknown, C, ChannelParams<R, C>>
  : { [E in keyof ChannelEventMap<R, C> & string]: SubscriptionEvent<E, ChannelEventMap<R, C>[E], C, ChannelParams<R, C>> }[keyof ChannelEventMap<R, C> & string]

type AllEventMaps<R> =
  | StaticMap<Field<R, 'events'>>
  | { [C in ChannelName<R>]: ChannelEventMap<R, C> }[ChannelName<R>]

/**
 * Server event name → data, over the route's `events` and the events of all its channels
 * (a name declared in several places takes the union of their types).
 */
export type EventMap<R> = { [K in KeysOfUnion<AllEventMaps<R>> & string]: ValueOfUnion<AllEventMaps<R>, K> }
/** The route's server event names. */
export type EventName<R> = keyof EventMap<R> & string

/** Where a server event came from. */
export interface EventMeta {
  action: string
  /** Set when the event belongs to a channel subscription (docs/protocol.md#events). */
  channel?: string
  params?: Record<string, unknown>
  /** Set on events of route groups that keep history: the group they belong to. */
  group?: string
  /** The event's position in its group's history (groups and channels with history). */
  offset?: number
  epoch?: string
  traceId?: string
}

/** A position in a group's history: the last event's offset and the history's epoch. */
export interface Position {
  offset: number
  epoch: string
}

/**
 * The answer to a recovery after a reconnect, for one history group (`group`) or channel
 * subscription (`channel`, `params`). `recovered: true`: the missed events were replayed
 * (through the usual event listeners) before any newer one. `recovered: false`: events may
 * be missing (history lost, too old, too many): refetch the state; live events continue.
 */
export interface RecoveryInfo {
  recovered: boolean
  group?: string
  channel?: string
  params?: Record<string, unknown>
  /** the position recovered from (when `recovered`) */
  from?: number
  /** the position after the replay */
  offset?: number
  epoch?: string
}

/** How the connection is authenticated: at the upgrade, by the handshake, or not (yet). */
export type Via = AuthVia | null

/** What `ready()` resolves with. */
export interface ReadyInfo {
  via: Via
}

/** `'close'` listener argument. */
export interface CloseInfo {
  code: number
  reason: string
  /** Whether the client will reconnect by itself (1001, 1011, 1013, network loss...). */
  willReconnect: boolean
}

/**
 * The client's own events; their names are reserved (a server event of the same name is
 * not delivered through `on`).
 */
export interface LifecycleEvents {
  /** The socket opened (the first frame has not arrived yet). */
  open: []
  /** The socket closed. */
  close: [info: CloseInfo]
  /** The connection is authenticated (handshake, refresh, or at the upgrade). */
  authorized: [info: { via: AuthVia }]
  /** The server lost pub/sub deliveries for these groups: refetch what may be missing. */
  resync: [info: { groups: string[] }]
  /** The credential expired; re-authorize within `graceSeconds` or the server closes 4401. */
  expired: [info: { graceSeconds: number }]
  /** A reconnect is scheduled. */
  reconnecting: [info: { attempt: number, delayMs: number }]
  /** After a reconnect: whether the events missed in a history group or channel were recovered. */
  recovery: [info: RecoveryInfo]
  /** Anything that went wrong without a caller to reject: network errors, failed handshakes, failed restores. */
  error: [error: WsxClientError]
}
/** The client's lifecycle event names. */
export type LifecycleName = keyof LifecycleEvents

/** Event name → listener arguments, server events and lifecycle events together. */
export type ClientEvents<R> = { [K in Exclude<EventName<R>, LifecycleName>]: [data: EventMap<R>[K], meta: EventMeta] } & LifecycleEvents

/**
 * What `socket.authorize` carries besides a bare token (docs/protocol.md#credentials-in-socketauthorize):
 * the server presents each field to its strategies as an HTTP request would carry it.
 */
export interface AuthorizeCredentials {
  /** presented as `Authorization: Bearer <token>` */
  token?: string
  /** with `password`: presented as `Authorization: Basic` */
  username?: string
  password?: string
  /** presented in the route's API-key header (default `X-API-Key`) */
  api_key?: string
  /** presented as the route's session cookie (the cookie's value as the server set it) */
  session_id?: string
}

/** A token, or credentials of another kind. */
export type Credential = string | AuthorizeCredentials

/** Supplies a credential for the handshake, e.g. fetched from the app's login endpoint. Called on each handshake and on `socket.expired`. */
export type TokenProvider = () => Credential | Promise<Credential>

/** The part of a WebSocket (browser or `ws`) the client uses. */
export interface WebSocketLike {
  readonly readyState: number
  /** set to `'arraybuffer'` when a codec is used */
  binaryType?: string
  send (data: string | Uint8Array): void
  close (code?: number, reason?: string): void
  addEventListener (type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void
}

/** A WebSocket constructor: the browser's global `WebSocket`, or `WebSocket` from `ws` in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[], options?: { headers?: Record<string, string> }) => WebSocketLike

/** An encoding of the envelope, selected by its subprotocol at the upgrade. */
export interface ClientCodec {
  /** offered at the upgrade; the server selects it on routes that speak this encoding */
  readonly subprotocol: string
  /** one frame to send */
  encode (frame: Record<string, unknown>): string | Uint8Array
  /** one received message's data (string, or ArrayBuffer for binary frames) to a frame */
  decode (data: unknown): unknown
}

/** Reconnect policy after 1001 / 1011 / 1013 / network loss. */
export interface ReconnectOptions {
  /** Attempts in a row before giving up (reset once a connection is ready). @default Infinity */
  retries?: number
  /** @default 250 */
  minDelayMs?: number
  /** @default 10000 */
  maxDelayMs?: number
  /** Fraction of each delay taken off at random, 0–1. @default 0.5 */
  jitter?: number
}

/** Options of `createClient()`; `params` and `query` are typed from the route's schemas. */
export interface ClientOptions<R = RouteShape> {
  /** Fills the URL's `:name` segments (URI-encoded), e.g. `{ room: 'general' }` for `/ws/chat/:room`. */
  params?: RouteParams<R>
  /** Appended to the URL as its query string (URI-encoded). */
  query?: RouteQuery<R>
  /**
   * A token (or other credentials: `{ api_key }`, `{ username, password }`, `{ session_id }`)
   * for the in-band handshake (`socket.authorize`), or a function returning one. A
   * function is called again for every handshake and on `socket.expired`. Not sent when the
   * server authenticated the upgrade.
   */
  token?: Credential | TokenProvider
  /** Subprotocols to offer; fastify-wsx selects `'wsx.v1'` when offered. @default none, or the codec's */
  protocols?: string | string[]
  /**
   * The wire encoding. `msgpack` from `fastify-wsx/client/msgpack` offers `wsx.v1.msgpack`
   * and speaks MessagePack in binary frames (the route must set `msgpack: true`). @default JSON
   */
  codec?: ClientCodec
  /** The WebSocket constructor. @default globalThis.WebSocket (in Node 20, pass `WebSocket` from `ws`) */
  WebSocket?: WebSocketConstructor
  /** Upgrade request headers, e.g. `authorization`. Node (`ws`) only: browsers cannot set them. */
  headers?: Record<string, string>
  /** Per-request timeout. @default 10000 */
  requestTimeoutMs?: number
  /** Reconnect policy; `false` never reconnects. */
  reconnect?: ReconnectOptions | false
  /**
   * History groups and channels with no position yet (a fresh page) replay their newest
   * `recent` events on join, e.g. the last messages of a chat room. @default none
   */
  recent?: number
}

/** Where the client stands. */
export type ClientState =
  /** opening the socket */
  | 'connecting'
  /** open, waiting for the first frame or the handshake's answer */
  | 'handshake'
  /** requests flow */
  | 'ready'
  /**
   * open, but the handshake failed (bad token, a token provider that threw): public actions
   * still flow, protected ones answer `not_authenticated`; `authorize()` tries again
   */
  | 'unauthenticated'
  /** waiting before a reconnect attempt */
  | 'waiting'
  /** closed by the server with a code that needs new credentials (or retries exhausted); `connect()` / `authorize()` resume */
  | 'stopped'
  /** closed by `close()`, for good */
  | 'closed'
