import type { Static, TSchema } from '@sinclair/typebox'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { WebSocket } from 'ws'
import type { WsxEventMap, WsxUserOf } from './registry.js'
import type { HistoryOptions } from '../lib/history.js'

export type { HistoryOptions }

/** `Static<T>` for a schema, `{}` when an action declares no request schema. */
export type DataOf<T> = T extends TSchema ? Static<T> : Record<string, never>
/** What a handler returns: `Static<T>` for a response schema, any JSON value otherwise. */
export type ReplyOf<T> = T extends TSchema ? Static<T> : unknown

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

/** One WebSocket connection, as handlers, permissions and hooks see it. */
export interface WsxConnection<User = WsxUserOf> {
  /** A process-unique id (`<instance>:<n>`), used in logs and presence. */
  readonly id: string
  /** The authenticated user; `null` only in public actions before authentication. */
  readonly user: User
  readonly authenticated: boolean
  readonly via: AuthVia | null
  /** Path params, validated and coerced by the route's `schema.params`. */
  readonly params: Record<string, unknown>
  /** Querystring, validated and coerced by the route's `schema.querystring`. */
  readonly query: Record<string, unknown>
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
  send<K extends keyof WsxEventMap & string>(action: K, data: WsxEventMap[K]): boolean
  join(group: string): Promise<void>
  leave(group: string): Promise<void>
  close(code?: number, reason?: string): void
}

/**
 * Any hook function Fastify accepts, used as a strategy (`authenticate`) or a `preHandler`:
 * `async (request, reply) => { ... }`, `(request, reply, done) => { ... }`, or what
 * `app.auth([...])` of @fastify/auth returns. One signature, the same as Fastify's
 * `onRequestHookHandler` (so a WsxHook is also a valid `onRequest` of an HTTP route): a
 * function that declares no `done` is awaited, one that declares it is called back.
 */
export type WsxHook = (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

/** A permission: resolves true to allow. `msg.object` holds what `loadObject` loaded. */
export type Permission<Obj = unknown> =
  (this: FastifyInstance, msg: WsxMessage<unknown, Obj>, conn: WsxConnection<WsxUserOf | null>) => boolean | Promise<boolean>

/** A throttle, shaped like `@fastify/rate-limit`'s options. */
export interface ThrottleOptions {
  /** Requests allowed per window. */
  max: number
  /** Window length in milliseconds, or a string like `'1 minute'`. @default 60000 */
  timeWindow?: number | string
  /** Bucket key. @default 'user' (the user's `sub`, or the client address before authentication) */
  key?: 'user' | 'ip' | 'connection' | ((msg: WsxMessage, conn: WsxConnection<WsxUserOf | null>) => string)
  /** A name, to share one bucket between actions. @default the action name */
  name?: string
}

type ConnFor<Pub> = WsxConnection<Pub extends true ? WsxUserOf | null : WsxUserOf>

/** An action: the schemas, checks and handler behind one dotted name. */
export interface ActionOptions<
  Req extends TSchema | undefined = TSchema | undefined,
  Res extends TSchema | undefined = TSchema | undefined,
  Pub extends boolean = boolean,
  Obj = unknown,
  Ret = ReplyOf<Res>
> {
  /** Callable before authentication. Nothing is public unless it says so. @default false */
  public?: Pub
  /** TypeBox schema of `data`; compiled once at boot. */
  request?: Req
  /** TypeBox schema of the reply's `data`; compiled into a serializer; a mismatch is a `server_error`. */
  response?: Res
  /** One-line description, shown in AsyncAPI and the playground. */
  summary?: string
  description?: string
  /** Loads the object the permissions check (chanx's object-level permissions), once per message. */
  loadObject?: (this: FastifyInstance, msg: WsxMessage<DataOf<Req>>, conn: ConnFor<Pub>) => Obj | Promise<Obj>
  /** Checks that must all resolve true; else `permission_denied`. */
  permissions?: Array<Permission<Obj>>
  /** Fastify `preHandler`-style functions, run after permissions with a request view and a reply shim. */
  preHandler?: WsxHook | WsxHook[]
  /** Per-action throttles; `false` disables the route's default. */
  throttle?: ThrottleOptions | ThrottleOptions[] | false
  /** Leave this action's frames out of the debug message log. @default false */
  silent?: boolean
  /** Returns the reply's `data`: `Static<response>` when a response schema is set. */
  handler: (this: FastifyInstance, msg: WsxMessage<DataOf<Req>, Obj>, conn: ConnFor<Pub>) => Ret | Promise<Ret>
}

export type AnyAction = ActionOptions<any, any, any, any, any>

/** A channel (PROTOCOL §6): params schema, an authorize check and the group it maps to. */
export interface ChannelOptions<P extends TSchema = TSchema, E extends Record<string, TSchema> = Record<string, TSchema>> {
  params: P
  /** Resolve true to allow the subscription. @default authenticated connections only */
  authorize?: (this: FastifyInstance, params: Static<P>, conn: WsxConnection) => boolean | Promise<boolean>
  /** The group a subscription joins. @default `<channel>:<params values joined by ':'>` */
  group?: (params: Static<P>) => string
  /** Events this channel carries (typed client, AsyncAPI). */
  events?: E
  /**
   * Keep the newest events with offsets so subscribers can recover what they missed
   * (`channel.subscribe` with `recover`). In memory, or in Redis Streams with `redis`.
   * @example history: { size: 100, ttl: '5m' }
   */
  history?: HistoryOptions
  summary?: string
}

export type AnyChannel = ChannelOptions<any, any>
