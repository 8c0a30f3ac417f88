import type { RedisOptions } from 'ioredis'
import type { WebsocketPluginOptions } from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'
import type { AnyAction, AnyChannel, EventDataMap, SomeConnection, RouteAction, RouteChannel, RouteTypes, ThrottleOptions, WsxConnection, WsxHook } from './route.js'
import type { StaticOf, WsxSchema } from './schema.js'
import type { WsxEventMap, WsxUserOf } from './registry.js'

/** The in-band handshake (docs/protocol.md#the-in-band-handshake). */
export interface HandshakeOptions {
  /** Failed `socket.authorize` attempts before close 4408 and a lock. @default 2 */
  attempts?: number
  /** How long the client address stays locked after the last failed attempt. @default 20 */
  lockSeconds?: number
  /** Close 4401 when not authenticated this long after open. @default 20 */
  timeoutSeconds?: number
  /** Close 4401 on the first protected or unknown action before authentication. @default false */
  strict?: boolean
  /** Seconds a client has to refresh after `socket.expired` before close 4401. @default 30 */
  expiryGraceSeconds?: number
}

/** A connection limit at the upgrade (docs/protocol.md#checks-in-order), through `@fastify/rate-limit`. */
export interface ConnectionRateLimit {
  max: number
  /** Milliseconds or a string like `'10 seconds'`. @default 10000 */
  timeWindow?: number | string
}

/** The static type of a route's `schema.params` / `schema.querystring`; a plain record without one. */
export type ParamsOf<S> = [S] extends [WsxSchema] ? StaticOf<S> : Record<string, unknown>

/** A map of event schemas to a map of their static types. */
export type StaticMap<M> = { [K in keyof M & string]: StaticOf<M[K]> }

/** The channels of a route's `channels` (a map, or a `(channel) => map` function). */
export type ChannelsOf<C> = C extends (...args: never[]) => infer R ? R : C
/** The actions of a route's `actions` (a map, or an `(action) => map` function). */
export type ActionsOf<A> = A extends (...args: never[]) => infer R ? R : A

type ChannelEventMaps<C> = { [K in keyof ChannelsOf<C>]: ChannelsOf<C>[K] extends { events?: infer M } ? StaticMap<Exclude<M, undefined>> : {} }[keyof ChannelsOf<C>]
type KeysOfUnion<T> = T extends unknown ? keyof T : never
type ValueOfUnion<T, K> = T extends unknown ? (K extends keyof T ? T[K] : never) : never
type MergeMaps<T> = { [K in KeysOfUnion<T> & string]: ValueOfUnion<T, K> }

/**
 * Event name → data over a route's `events` and its channels' `events` (a name declared in
 * several places takes the union of their types). A route that declares no event at all
 * falls back to the app-wide {@link WsxEventMap}.
 */
export type RouteEventMap<E, C = {}> = [KeysOfUnion<StaticMap<E> | ChannelEventMaps<C>>] extends [never]
  ? WsxEventMap
  : MergeMaps<StaticMap<E> | ChannelEventMaps<C>>

/** What the actions of a route see: its params, query and events (its own and its channels'). */
export type RouteTypesOf<E, C, P, Q> = RouteTypes<ParamsOf<P>, ParamsOf<Q>, RouteEventMap<E, C>>

/**
 * A route's connection as its route-level callbacks see it: `User` is non-null in `groups` and
 * `onAuthenticated`, possibly null in `onConnect` / `onDisconnect` (a connection may open and
 * close without ever authenticating, e.g. one that authorizes in-band).
 */
export type RouteConnection<E, C, P, Q, User = WsxUserOf> = WsxConnection<User, ParamsOf<P>, ParamsOf<Q>, RouteEventMap<E, C>>

/** Options of `broadcast()` and `publish()`. */
export interface BroadcastOptions {
  /** a connection (or its id) that should not receive it: exclude-sender */
  exclude?: SomeConnection | string
}

/** The params of channel `Ch` of a channel map: the static type of its `params` schema. */
type ChannelParamsOf<Channels, Ch> = Ch extends keyof Channels ? Channels[Ch] extends { params: infer S } ? StaticOf<S> : never : never

/**
 * Sends typed from one route's events: the route handle `scope.wsx.route()` returns, and the
 * second argument of `actions: (action, route) => ({ ... })` for use inside handlers.
 */
export interface RouteSenders<Events extends EventDataMap, Channels> {
  /** Sends an event to every member of a group, on every instance. Serialized once. */
  broadcast<K extends keyof Events & string>(group: string, action: K, data: NoInfer<Events[K]>, opts?: BroadcastOptions): Promise<void>
  /** Sends an event to a channel's subscribers; the frame carries `channel` and `params`. */
  publish<Ch extends keyof Channels & string, K extends keyof Events & string>(channel: Ch, params: NoInfer<ChannelParamsOf<Channels, Ch>>, action: K, data: NoInfer<Events[K]>, opts?: BroadcastOptions): Promise<void>
  /** Pushes an event to every connection of a user (all devices), on every instance; resolves how many. */
  sendToUser<K extends keyof Events & string>(user: string, action: K, data: NoInfer<Events[K]>): Promise<number>
}

/**
 * `(helper) => map`. Declared as a method's type so that routes of different params and
 * events stay assignable to one another (`Partial<RouteOptions>` spreads, route lists).
 */
type Factory<Helper, Result, Extra = never> = { bivarianceHack (helper: Helper, extra: Extra): Result }['bivarianceHack']

/** Options of one WebSocket route declared with `app.wsx.route()`. */
export interface RouteOptions<
  A extends Record<string, AnyAction> = Record<string, AnyAction>,
  C extends Record<string, AnyChannel> = Record<string, AnyChannel>,
  E extends Record<string, WsxSchema> = Record<string, WsxSchema>,
  P extends WsxSchema | undefined = WsxSchema | undefined,
  Q extends WsxSchema | undefined = WsxSchema | undefined
> {
  /** URL pattern, Fastify syntax (`/ws/chat/:room`); the plugin prefix applies. */
  url: string
  /**
   * Path params and querystring schemas, validated with coercion at the upgrade (400). They
   * type `conn.params` / `conn.query` in the route's actions, channels and callbacks.
   */
  schema?: { params?: P, querystring?: Q }
  /**
   * Fastify hook functions `(request, reply)`, the same ones the app's HTTP routes use,
   * tried in order until one succeeds. A strategy wrapped in `handshakeOnly()` runs only
   * on the in-band token.
   */
  authenticate?: WsxHook | WsxHook[]
  /**
   * Where credentials travel besides `Authorization`. `apiKeyHeader`: the header an
   * `api_key` of `socket.authorize` is presented in; at the upgrade it counts as an explicit
   * credential (a failure answers 401). `sessionCookie`: the cookie a `session_id` of
   * `socket.authorize` is presented as. `false` turns one off.
   * @default { apiKeyHeader: 'x-api-key', sessionCookie: 'sessionId' }
   */
  credentials?: { apiKeyHeader?: string | false, sessionCookie?: string | false }
  /** The in-band handshake; `false` requires authentication at the upgrade (401). @default enabled */
  handshake?: HandshakeOptions | false
  /**
   * The route's actions, by dotted name: `(action, route) => ({ 'chat.send': action({ ... }) })`,
   * so that each handler sees this route's typed `conn.params`, `conn.query` and `conn.send`,
   * and `route.broadcast` / `publish` / `sendToUser` typed from its events; or a map of
   * actions wrapped in the standalone `action()`.
   */
  actions: A | Factory<RouteAction<RouteTypesOf<E, C, P, Q>>, A, RouteSenders<RouteEventMap<E, C>, C>>
  /**
   * Channel subscriptions (README.md#groups-channels-and-presence): a map of `defineChannel()` results, or
   * `(channel) => ({ room: channel({ ... }) })` for `authorize` to see the route's typed
   * `conn.params` (declare `channels` before `actions` then).
   */
  channels?: C | Factory<RouteChannel<RouteTypesOf<E, {}, P, Q>>, C>
  /**
   * Server events the route sends (TypeBox schemas): they type `conn.send` in the route's
   * actions, the route handle's `broadcast`/`publish`/`sendToUser`, the typed client and AsyncAPI.
   */
  events?: E
  /** Groups a connection joins once authenticated (e.g. from params). */
  groups?: (conn: RouteConnection<E, C, P, Q>) => string | string[] | undefined
  /** Allowed browser origins; `'*'` allows any. @default the plugin's `origins` (same-origin) */
  origins?: string[] | '*'
  /** Refuse upgrades that carry no Origin header (non-browsers). @default false */
  requireOrigin?: boolean
  /** Upgrades per client address. `false` turns it off. @default the plugin's */
  connectionRateLimit?: ConnectionRateLimit | false
  /** Read a token from this query parameter at the upgrade. Never logged. @default off */
  tokenQueryParam?: string
  /** Max inbound frame size in bytes (close 1009). @default the plugin's `maxPayload` */
  maxPayload?: number
  /** A per-connection flood limit applied to every action. @default the plugin's `messageRateLimit` */
  messageRateLimit?: ThrottleOptions | false
  /**
   * Also speak MessagePack: a client offering the `wsx.v1.msgpack` subprotocol gets the
   * same envelope in binary frames (docs/protocol.md#encodings-json-and-messagepack). JSON clients are unaffected.
   * @default false
   */
  msgpack?: boolean
  /** Called once the connection opened (after the first frame). */
  onConnect?: (this: FastifyInstance, conn: RouteConnection<E, C, P, Q, WsxUserOf | null>) => unknown
  /** Called once the connection is authenticated (upgrade or handshake). */
  onAuthenticated?: (this: FastifyInstance, conn: RouteConnection<E, C, P, Q>) => unknown
  /** Called once the socket closed. */
  onDisconnect?: (this: FastifyInstance, conn: RouteConnection<E, C, P, Q, WsxUserOf | null>, code: number) => unknown
  summary?: string
  description?: string
}

/**
 * A route as `defineRoute()` and `scope.wsx.route()` return it: the options with `actions` and
 * `channels` as plain maps (their factories already run), so `typeof route` types the client.
 */
export type DefinedRoute<
  A extends Record<string, AnyAction> = Record<string, AnyAction>,
  C extends Record<string, AnyChannel> = Record<string, AnyChannel>,
  E extends Record<string, WsxSchema> = Record<string, WsxSchema>,
  P extends WsxSchema | undefined = WsxSchema | undefined,
  Q extends WsxSchema | undefined = WsxSchema | undefined
> = Omit<RouteOptions<A, C, E, P, Q>, 'actions' | 'channels'> & { actions: A, channels?: C }

/**
 * What `scope.wsx.route()` returns: the route's options (so `typeof route` types the client)
 * and `broadcast` / `publish` / `sendToUser` typed from the route's and its channels' `events`.
 */
export type WsxRoute<
  A extends Record<string, AnyAction> = Record<string, AnyAction>,
  C extends Record<string, AnyChannel> = Record<string, AnyChannel>,
  E extends Record<string, WsxSchema> = Record<string, WsxSchema>,
  P extends WsxSchema | undefined = WsxSchema | undefined,
  Q extends WsxSchema | undefined = WsxSchema | undefined
> = DefinedRoute<A, C, E, P, Q> & RouteSenders<RouteEventMap<E, C>, C>

/** An ioredis client of any major (`Redis` or `Cluster`), recognised by its shape. */
export interface WsxRedisClient {
  duplicate (...args: never[]): unknown
  readonly status: string
  readonly options: object
}

/** An mqemitter-compatible emitter (mqemitter, mqemitter-redis, ...). */
export interface WsxEmitter {
  on(topic: string, listener: (msg: { topic: string, [k: string]: unknown }, done: () => void) => void, done?: () => void): unknown
  removeListener(topic: string, listener: (msg: { topic: string, [k: string]: unknown }, done: () => void) => void, done?: () => void): unknown
  emit(msg: { topic: string, [k: string]: unknown }, done?: (err?: Error | null) => void): unknown
  close(done: () => void): void
}

/** Options of `app.register(wsx, options)`. Every limit has a default; all are checked at boot. */
export interface WsxPluginOptions {
  /** Max inbound frame in bytes (close 1009). @default 65536 */
  maxPayload?: number
  /** Max nesting depth of an inbound JSON frame. @default 32 */
  maxDepth?: number
  /** Allowed browser origins (exact, after normalisation). @default same-origin only */
  origins?: string[] | '*'
  /** Upgrades per client address. @default { max: 100, timeWindow: 10000 } */
  connectionRateLimit?: ConnectionRateLimit | false
  /** Concurrent connections on this instance. @default 10000 */
  maxConnections?: number
  /** Concurrent connections per authenticated user. @default 32 */
  maxConnectionsPerUser?: number
  /** Concurrent connections per client address. @default 256 */
  maxConnectionsPerIp?: number
  /** Per-connection message budget over all actions. @default { max: 100, timeWindow: 10000 } */
  messageRateLimit?: ThrottleOptions | false
  /** Close 4429 after this many throttled answers in a row. @default 10 */
  maxThrottledInARow?: number
  /** Close 4400 after this many bad frames in a row after authentication. @default 10 */
  maxBadFrames?: number
  /** Messages handled at once per connection; 1 keeps replies and side effects in arrival order. @default 1 */
  maxInflight?: number
  /** Messages queued per connection (unread, on a low-level socket) before close 1013. @default 256 */
  maxQueued?: number
  /**
   * Bytes of inbound frames waiting per connection (envelope or low-level) before close 1013;
   * at least `maxPayload`. @default 16 × maxPayload (1 MiB)
   */
  maxQueuedBytes?: number
  /** Outbound bytes buffered for a slow reader before close 1013, on every socket (envelope or low-level). @default 1048576 */
  maxBufferedBytes?: number
  /** Groups per connection. @default 128 */
  maxGroupsPerConnection?: number
  /** Ping interval; a connection missing two pongs is terminated. `0` disables. @default 25000 */
  heartbeatMs?: number
  /**
   * Milliseconds one hook-style function (strategy, `preHandler`) may take before it fails:
   * a callback hook that never calls `done` ends here. @default 10000
   */
  hookTimeout?: number
  /** Handshake defaults for every route. */
  handshake?: HandshakeOptions
  /** Actions left out of the debug message log. @default ['socket.ping'] */
  logIgnore?: string[]
  /**
   * An mqemitter-compatible bus for groups, channels and `app.wsx.broadcast` across instances.
   * @default an in-process mqemitter
   */
  emitter?: WsxEmitter
  /**
   * Redis for throttles, handshake locks, presence and cross-instance user disconnect:
   * a `redis://` URL, ioredis options (standalone or Sentinel: `sentinels` + `name`), or an
   * ioredis client of any major: `Redis`, `Cluster`, or `app.redis` from @fastify/redis.
   * The plugin duplicates a client with fail-fast options and never uses or closes it.
   * Also builds the emitter when `emitter` is unset.
   */
  redis?: string | RedisOptions | WsxRedisClient
  /**
   * Presence (who is in a group, across instances). `groups` picks the groups tracked;
   * `events` the groups whose members get `presence.join` / `presence.leave` events.
   * `false` turns presence off. @default { groups: every group, events: none }
   */
  presence?: false | { groups?: (group: string) => boolean, events?: (group: string) => boolean }
  /** Namespace for bus topics and Redis keys, so apps can share a Redis. @default 'wsx' */
  namespace?: string
  /** Graceful shutdown on `app.close()`. */
  shutdown?: { graceMs?: number, windowMs?: number }
  /**
   * Options passed to `@fastify/websocket` when fastify-wsx registers it. Its `errorHandler`
   * is called on a socket error of every route, with the connection's request view and a
   * reply stand-in on envelope routes (README, Options).
   */
  websocket?: { errorHandler?: WebsocketErrorHandler, [option: string]: unknown }
}

/** `@fastify/websocket`'s `errorHandler`: `(this: instance, error, socket, request, reply)`. */
export type WebsocketErrorHandler = NonNullable<WebsocketPluginOptions['errorHandler']>
