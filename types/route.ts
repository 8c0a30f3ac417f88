import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { WebSocket } from 'ws'
import type { WsxEventMap, WsxUserOf } from './registry.js'
import type { HistoryOptions } from '../lib/broadcast/history.js'

export type { HistoryOptions }
import type { StaticOf, WsxSchema } from './schema.js'

/**
 * `msg.data`: the static type of the `request` schema; `unknown` when the action declares
 * none, and in a plain object-literal action (whose schema types are `any`), never `any`.
 */
export type DataOf<T> = 0 extends (1 & T) ? unknown : [T] extends [WsxSchema] ? StaticOf<T> : unknown
/** What a handler returns: the static type of the `response` schema, any JSON value otherwise. */
export type ReplyOf<T> = [T] extends [WsxSchema] ? StaticOf<T> : unknown

/** One inbound request, as a handler sees it. */
export interface WsxMessage<Data = unknown, Obj = undefined> {
  /** The action name, e.g. `chat.send`. */
  readonly action: string
  /** The client's request id; `null` when the client expects no reply. */
  readonly id: string | number | null
  /** The request data, validated against the action's `request` schema. */
  readonly data: Data
  /** Echoed from the request or made by the server; on every log line of this request. */
  readonly trace_id: string
  /** A child of the connection's logger bound to `trace_id` and `action`. */
  readonly log: FastifyBaseLogger
  /** The object `loadObject` returned, for object-level permissions (undefined without it). */
  readonly object: Obj
}

/** Where a connection's identity came from. */
export type AuthVia = 'upgrade' | 'authorize'

/** Event name → data of the events a connection may be sent. */
export type EventDataMap = Record<string, unknown>

/**
 * One WebSocket connection, as handlers, permissions and hooks see it. Inside a route
 * declared with `actions: (action) => ({ ... })`, `Params` and `Query` are the static types of
 * the route's `schema.params` / `schema.querystring`, and `Events` its declared events.
 */
export interface WsxConnection<
  User = WsxUserOf,
  Params = Record<string, unknown>,
  Query = Record<string, unknown>,
  Events extends EventDataMap = WsxEventMap
> {
  /** A process-unique id (`<instance>:<n>`), used in logs and presence. */
  readonly id: string
  /** The authenticated user; `null` only in public actions before authentication. */
  readonly user: User
  readonly authenticated: boolean
  readonly via: AuthVia | null
  /** Path params, validated and coerced by the route's `schema.params`. */
  readonly params: Params
  /** Querystring, validated and coerced by the route's `schema.querystring`. */
  readonly query: Query
  /** The upgrade request's headers. */
  readonly headers: IncomingHttpHeaders
  /** The client address, as Fastify computed it (honours `trustProxy`). */
  readonly ip: string
  /** The route's full URL pattern, prefix included. */
  readonly url: string
  readonly log: FastifyBaseLogger
  /** A request view carrying the upgrade's headers, params, query and `user`, for Fastify-style hooks. */
  readonly request: FastifyRequest
  /** Groups this connection is a member of on this instance. */
  readonly groups: ReadonlySet<string>
  /** Free per-connection state for the application. */
  readonly state: Record<string, unknown>
  /** The underlying `ws` socket (escape hatch). */
  readonly socket: WebSocket
  /** Push a server event to this connection. Returns false when it was not written. */
  send<K extends keyof Events & string>(action: K, data: NoInfer<Events[K]>): boolean
  join(group: string): Promise<void>
  leave(group: string): Promise<void>
  close(code?: number, reason?: string): void
}

/**
 * Any hook function Fastify accepts, used as a strategy (`authenticate`) or a `preHandler`:
 * `async (request, reply) => { ... }`, `(request, reply, done) => { ... }`, or what
 * `app.auth([...])` of @fastify/auth returns. One signature, the same as Fastify's
 * `onRequestHookHandler` (so a WsxHook is also a valid `onRequest` of an HTTP route): a
 * function that declares no `done` is awaited, one that declares it is called back. In a route's
 * actions, `request.params` / `request.query` are typed from the route's schemas.
 */
export type WsxHook<Params = unknown, Query = unknown> =
  (this: FastifyInstance, request: FastifyRequest<{ Params: Params, Querystring: Query }>, reply: FastifyReply, done: HookHandlerDoneFunction) => void

/** Any connection of any route: what route-independent checks (`isAuthenticated`, `hasRole`) take. */
export type SomeConnection = WsxConnection<unknown, unknown, unknown, EventDataMap>

/**
 * A permission: resolves true to allow. `msg.object` holds what `loadObject` loaded. `Conn`
 * is the connection it checks: by default an authenticated one (`conn.user` set), as in every
 * non-public action; a permission of a public action takes `WsxConnection<WsxUserOf | null>`.
 */
export type Permission<Obj = unknown, Conn = WsxConnection> =
  (this: FastifyInstance, msg: WsxMessage<unknown, Obj>, conn: Conn) => boolean | Promise<boolean>

/** A throttle, shaped like `@fastify/rate-limit`'s options. */
export interface ThrottleOptions {
  /** Requests allowed per window. */
  max: number
  /** Window length in milliseconds, or a string like `'1 minute'`. @default 60000 */
  timeWindow?: number | string
  /** Bucket key. @default 'user' (the user's `sub`, or the client address before authentication) */
  key?: 'user' | 'ip' | 'connection' | ((msg: WsxMessage, conn: SomeConnection) => string)
  /** A name, to share one bucket between actions. @default the action name */
  name?: string
}

/** What a route tells the actions and channels declared inside it. */
export interface RouteTypes<Params = Record<string, unknown>, Query = Record<string, unknown>, Events extends EventDataMap = WsxEventMap> {
  params: Params
  query: Query
  events: Events
}

/** The constraint of a route's types (any params, query and events). */
export type SomeRouteTypes = RouteTypes<unknown, unknown, EventDataMap>

/** The connection an action's code sees: the user is non-null unless the action is public. */
export type ConnFor<Pub, Ctx extends SomeRouteTypes = RouteTypes> =
  WsxConnection<Pub extends true ? WsxUserOf | null : WsxUserOf, Ctx['params'], Ctx['query'], Ctx['events']>

/** An action: the schemas, checks and handler behind one dotted name. */
export interface ActionOptions<
  Req extends WsxSchema | undefined = WsxSchema | undefined,
  Res extends WsxSchema | undefined = WsxSchema | undefined,
  Pub extends boolean = boolean,
  Obj = unknown,
  Ret = ReplyOf<Res>,
  Ctx extends SomeRouteTypes = RouteTypes
> {
  /** Callable before authentication. Nothing is public unless it says so. @default false */
  public?: Pub
  /** TypeBox schema of `data` (`@sinclair/typebox` 0.34 or `typebox` 1.x); compiled once at boot. */
  request?: Req
  /** TypeBox schema of the reply's `data`; compiled into a serializer; a mismatch is a `server_error`. */
  response?: Res
  /** One-line description, shown in AsyncAPI and the playground. */
  summary?: string
  description?: string
  /** Loads the object the permissions check (chanx's object-level permissions), once per message. */
  loadObject?: (this: FastifyInstance, msg: WsxMessage<DataOf<Req>>, conn: ConnFor<Pub, Ctx>) => Obj | Promise<Obj>
  /** Checks that must all resolve true; else `permission_denied`. */
  permissions?: Array<Permission<Obj, ConnFor<Pub, Ctx>>>
  /** Fastify `preHandler`-style functions, run after permissions with a request view and a reply shim. */
  preHandler?: WsxHook<Ctx['params'], Ctx['query']> | Array<WsxHook<Ctx['params'], Ctx['query']>>
  /** Per-action throttles; `false` disables the route's default. */
  throttle?: ThrottleOptions | ThrottleOptions[] | false
  /** Leave this action's frames out of the debug message log. @default false */
  silent?: boolean
  /** Returns the reply's `data`: the static type of `response` when a response schema is set. */
  handler: (this: FastifyInstance, msg: WsxMessage<DataOf<Req>, Obj>, conn: ConnFor<Pub, Ctx>) => Ret | Promise<Ret>
}

/** Any action of any route (the constraint of a route's `actions`). */
export type AnyAction = ActionOptions<any, any, any, any, any, any>

/** A channel (docs/protocol.md#channelsubscribe-and-channelunsubscribe): params schema, an authorize check and the group it maps to. */
export interface ChannelOptions<
  P extends WsxSchema = WsxSchema,
  E extends Record<string, WsxSchema> = Record<string, WsxSchema>,
  Ctx extends SomeRouteTypes = RouteTypes
> {
  params: P
  /** Resolve true to allow the subscription. @default authenticated connections only */
  authorize?: (this: FastifyInstance, params: StaticOf<P>, conn: WsxConnection<WsxUserOf, Ctx['params'], Ctx['query'], Ctx['events']>) => boolean | Promise<boolean>
  /** The group a subscription joins. @default `<channel>:<params values joined by ':'>` */
  group?: (params: StaticOf<P>) => string
  /** Events this channel carries (typed client, AsyncAPI, server-side sends). */
  events?: E
  /**
   * Keep the newest events with offsets so subscribers can recover what they missed
   * (`channel.subscribe` with `recover`). In memory, or in Redis Streams with `redis`.
   * @example history: { size: 100, ttl: '5m' }
   */
  history?: HistoryOptions
  summary?: string
}

/** Any channel of any route (the constraint of a route's `channels`). */
export type AnyChannel = ChannelOptions<any, any, any>

/**
 * The `action()` a route hands to `actions: (action) => ({ ... })`: the same helper, with
 * `conn.params`, `conn.query` and `conn.send` typed from that route.
 */
export type RouteAction<Ctx extends SomeRouteTypes> = <
  Req extends WsxSchema | undefined = undefined,
  Res extends WsxSchema | undefined = undefined,
  const Pub extends boolean = false,
  Obj = undefined,
  Ret extends ReplyOf<Res> = ReplyOf<Res>
>(def: ActionOptions<Req, Res, Pub, Obj, Ret, Ctx>) => ActionOptions<NoInfer<Req>, NoInfer<Res>, NoInfer<Pub>, NoInfer<Obj>, NoInfer<Ret>, Ctx>

/**
 * The `defineChannel()` a route hands to `channels: (channel) => ({ ... })`: `authorize` sees
 * the route's typed `conn.params` and `conn.query`.
 */
export type RouteChannel<Ctx extends SomeRouteTypes> = <
  P extends WsxSchema,
  const E extends Record<string, WsxSchema> = Record<never, WsxSchema>
>(def: ChannelOptions<P, E, Ctx>) => ChannelOptions<NoInfer<P>, NoInfer<E>, Ctx>
