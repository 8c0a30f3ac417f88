// Builds everything one route needs at boot (fastify's lib/context.js idea): the action
// map with compiled validators and serializers, strategy lists, throttles and the
// prebuilt first frames. The hot path only reads fields from the result.
import type { FastifyInstance } from 'fastify'
import { errors } from '../errors.js'
import { ACTION_PATTERN, BuiltinAction, MAX_ACTION_LENGTH, ServerEvent } from '../../protocol/index.js'
import { compileSerializer, compileValidator, isTypeBox, type Serializer, type Validator } from './validation.js'
import { checkHandshake, checkOrigins, checkThrottle, type WsxConfig } from './config.js'
import { isAsyncWithDone, isHandshakeOnly } from '../fastify/hook-runner.js'
import { eventFrame } from '../connection/envelope.js'
import { toMilliseconds } from './duration.js'
import { compileHistory, type HistoryConfig } from '../broadcast/history.js'
import { defaultCredentials, type CredentialSettings } from '../upgrade/credentials.js'
import type { AnyAction, AnyChannel, ThrottleOptions, WsxHook, Permission } from '../../types/route.js'
import type { DefinedRoute, HandshakeOptions, RouteOptions, RouteSenders } from '../../types/options.js'
import type { WsxSchema } from '../../types/schema.js'
import type { EventDataMap, WsxConnection, WsxMessage } from '../../types/route.js'

export interface CompiledThrottle {
  bucket: string
  max: number
  windowMs: number
  key: NonNullable<ThrottleOptions['key']>
}

export interface CompiledAction {
  name: string
  public: boolean
  validate: Validator | null
  validateResponse: Validator | null
  serialize: Serializer | null
  loadObject: AnyAction['loadObject'] | null
  permissions: Permission[]
  preHandler: WsxHook[]
  throttles: CompiledThrottle[]
  silent: boolean
  handler: AnyAction['handler']
  summary?: string
  description?: string
  request?: WsxSchema
  response?: WsxSchema
}

export interface CompiledChannel {
  name: string
  params: WsxSchema
  validate: Validator
  authorize: AnyChannel['authorize'] | null
  group: (params: Record<string, unknown>) => string
  /** bounded history with offsets and recovery (docs/protocol.md#history-and-recovery) */
  history: HistoryConfig | null
  events?: Record<string, WsxSchema>
  summary?: string
}

/** Route options with `actions` / `channels` factories already run: plain maps (the public DefinedRoute). */
export type ResolvedRouteOptions = DefinedRoute

export interface RouteContext {
  url: string
  instance: FastifyInstance
  options: ResolvedRouteOptions
  actions: Map<string, CompiledAction>
  publicNames: string[]
  /** strategies tried at the upgrade (handshake-only ones left out) */
  upgradeStrategies: WsxHook[]
  /** strategies tried on a `socket.authorize` token */
  handshakeStrategies: WsxHook[]
  handshake: Required<HandshakeOptions> | null
  channels: Map<string, CompiledChannel>
  origins: string[] | '*' | null
  requireOrigin: boolean
  maxPayload: number
  /** clients may pick the `wsx.v1.msgpack` subprotocol */
  msgpack: boolean
  messageRateLimit: { max: number, windowMs: number } | null
  /** upgrades per client address, checked before any hook of the app runs */
  connectionRateLimit: { max: number, windowMs: number } | null
  tokenQueryParam: string | null
  groups: ((conn: WsxConnection) => string | string[] | undefined) | null
  handshakeFrame: string
  authorizedFrame: string
  /** where in-band credentials travel, and which upgrade headers are explicit credentials */
  credentials: CredentialSettings
  /** the Request prototype and context of this route, captured at its first upgrade */
  requestProto?: object
  /** the Reply prototype of this route (reply decorators for hook shims), captured likewise */
  replyProto?: object
  requestContext?: [symbol, unknown] | null
}

const routeOptionKeys = new Set([
  'url', 'schema', 'authenticate', 'handshake', 'actions', 'channels', 'events', 'groups', 'origins', 'requireOrigin',
  'connectionRateLimit', 'tokenQueryParam', 'maxPayload', 'msgpack', 'messageRateLimit', 'onConnect', 'onAuthenticated',
  'onDisconnect', 'summary', 'description', 'credentials'
])
const actionOptionKeys = new Set([
  'public', 'request', 'response', 'summary', 'description', 'loadObject', 'permissions', 'preHandler', 'throttle', 'silent', 'handler'
])
const channelOptionKeys = new Set(['params', 'authorize', 'group', 'events', 'summary', 'history'])
const builtinNames = new Set<string>(Object.values(BuiltinAction))

function asArray<T> (value: T | T[] | undefined | null): T[] {
  if (value === undefined || value === null) return []
  return Array.isArray(value) ? value : [value]
}

function checkSchema (schema: unknown, part: string, action: string, url: string): WsxSchema | null {
  if (schema === undefined) return null
  if (!isTypeBox(schema)) throw new errors.WSX_ERR_SCHEMA_NOT_TYPEBOX(part, action, url)
  return schema
}

function compileThrottles (value: AnyAction['throttle'], name: string, url: string): CompiledThrottle[] {
  if (value === false || value === undefined) return []
  return asArray(value).map((t, i) => {
    checkThrottle(t, `throttle of "${name}" on ${url}`)
    const key = t.key ?? 'user'
    if (typeof key !== 'function' && key !== 'user' && key !== 'ip' && key !== 'connection') {
      throw new errors.WSX_ERR_ACTION_INVALID(name, url, 'throttle.key must be user, ip, connection or a function')
    }
    return { bucket: t.name ?? (i === 0 ? name : `${name}#${i}`), max: t.max, windowMs: toMilliseconds(t.timeWindow ?? 60_000), key }
  })
}

function compileAction (name: string, def: AnyAction, url: string): CompiledAction {
  if (name.length > MAX_ACTION_LENGTH || !ACTION_PATTERN.test(name)) throw new errors.WSX_ERR_ACTION_NAME(name, url)
  if (builtinNames.has(name)) throw new errors.WSX_ERR_ACTION_RESERVED(name, url)
  if (typeof def !== 'object' || def === null) throw new errors.WSX_ERR_ACTION_INVALID(name, url, 'must be an object')
  for (const key of Object.keys(def)) {
    if (!actionOptionKeys.has(key)) throw new errors.WSX_ERR_ACTION_INVALID(name, url, `unknown option "${key}"`)
  }
  if (typeof def.handler !== 'function') throw new errors.WSX_ERR_ACTION_INVALID(name, url, 'handler must be a function')
  const permissions = asArray(def.permissions)
  const preHandler = asArray(def.preHandler)
  if ([...permissions, ...preHandler].some((f) => typeof f !== 'function')) {
    throw new errors.WSX_ERR_ACTION_INVALID(name, url, 'permissions and preHandler take functions')
  }
  if (preHandler.some(isAsyncWithDone)) throw new errors.WSX_ERR_ACTION_INVALID(name, url, 'an async preHandler must not also take done')
  const request = checkSchema(def.request, 'request', name, url)
  const response = checkSchema(def.response, 'response', name, url)
  const compiled: CompiledAction = {
    name,
    public: def.public === true,
    validate: request ? compileValidator(request, `${url} ${name}`) : null,
    validateResponse: response ? compileValidator(response, `${url} ${name} response`) : null,
    serialize: response ? compileSerializer(response, `${url} ${name}`) : null,
    loadObject: def.loadObject ?? null,
    permissions: permissions as Permission[],
    preHandler,
    throttles: compileThrottles(def.throttle, name, url),
    silent: def.silent === true,
    handler: def.handler
  }
  if (def.summary) compiled.summary = def.summary
  if (def.description) compiled.description = def.description
  if (request) compiled.request = request
  if (response) compiled.response = response
  return compiled
}

/** `{ max, timeWindow }` → `{ max, windowMs }`, checked; `false` → null. */
export function compileRate (value: { max: number, timeWindow?: number | string } | false, where: string, defaultWindowMs: number): { max: number, windowMs: number } | null {
  if (value === false) return null
  checkThrottle(value, where)
  return { max: value.max, windowMs: toMilliseconds(value.timeWindow ?? defaultWindowMs) }
}

function defaultChannelGroup (name: string) {
  return (params: Record<string, unknown>) => [name, ...Object.keys(params).sort().map((k) => String(params[k]))].join(':')
}

function compileChannel (name: string, def: AnyChannel, url: string): CompiledChannel {
  if (!ACTION_PATTERN.test(name) || name.length > 64) throw new errors.WSX_ERR_CHANNEL_INVALID(name, url, 'names are [A-Za-z0-9_.] up to 64 characters')
  if (typeof def !== 'object' || def === null) throw new errors.WSX_ERR_CHANNEL_INVALID(name, url, 'must be an object')
  for (const key of Object.keys(def)) {
    if (!channelOptionKeys.has(key)) throw new errors.WSX_ERR_CHANNEL_INVALID(name, url, `unknown option "${key}"`)
  }
  if (!isTypeBox(def.params)) throw new errors.WSX_ERR_SCHEMA_NOT_TYPEBOX('params', `channel ${name}`, url)
  if (def.authorize !== undefined && typeof def.authorize !== 'function') throw new errors.WSX_ERR_CHANNEL_INVALID(name, url, 'authorize must be a function')
  if (def.group !== undefined && typeof def.group !== 'function') throw new errors.WSX_ERR_CHANNEL_INVALID(name, url, 'group must be a function')
  const compiled: CompiledChannel = {
    name,
    params: def.params,
    validate: compileValidator(def.params, `${url} channel ${name}`),
    authorize: def.authorize ?? null,
    group: (def.group as CompiledChannel['group'] | undefined) ?? defaultChannelGroup(name),
    history: def.history === undefined ? null : compileHistory(def.history, `history of channel ${name} on ${url}`)
  }
  if (def.events) compiled.events = def.events
  if (def.summary) compiled.summary = def.summary
  return compiled
}

/**
 * A route may lower the plugin's `maxPayload`, never raise it: the WebSocket server closes
 * larger frames (1009) before any route sees them, so a larger value would be a silent lie.
 */
function routeMaxPayload (value: unknown, pluginMax: number, url: string): number {
  if (value === undefined) return pluginMax
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new errors.WSX_ERR_ROUTE_INVALID(url, 'maxPayload must be a positive integer')
  if ((value as number) > pluginMax) {
    throw new errors.WSX_ERR_ROUTE_INVALID(url, `maxPayload ${String(value)} exceeds the plugin's maxPayload ${pluginMax}, which the WebSocket server enforces first; raise the plugin's option instead`)
  }
  return value as number
}

/** `credentials: { apiKeyHeader, sessionCookie }`: names checked, `false` turns one off. */
function compileCredentials (value: RouteOptions['credentials'], url: string): CredentialSettings {
  if (value === undefined) return defaultCredentials
  if (typeof value !== 'object' || value === null) throw new errors.WSX_ERR_ROUTE_INVALID(url, 'credentials must be { apiKeyHeader?, sessionCookie? }')
  const settings = { ...defaultCredentials }
  for (const [key, name] of Object.entries(value)) {
    if (key !== 'apiKeyHeader' && key !== 'sessionCookie') throw new errors.WSX_ERR_ROUTE_INVALID(url, `credentials.${key} is not an option`)
    if (name === false) {
      settings[key] = null
      continue
    }
    // a header name (token chars) or a cookie name; both exclude separators and spaces
    if (typeof name !== 'string' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/.test(name)) {
      throw new errors.WSX_ERR_ROUTE_INVALID(url, `credentials.${key} must be a header or cookie name, or false`)
    }
    settings[key] = key === 'apiKeyHeader' ? name.toLowerCase() : name
  }
  return settings
}

// `actions: (action) => ({ ... })` and `channels: (channel) => ({ ... })` exist for the type
// checker (the helpers they receive carry the route's types); at runtime both helpers are
// identities, so a factory is simply called once, at boot.
const identity = <T>(def: T): T => def

/**
 * What `actions: (action, route) => ...` gets as `route`: the public RouteSenders, typed per
 * route at compile time; at runtime any route's (its events checked by the facade).
 */
export type SendersLike = RouteSenders<EventDataMap, Record<string, AnyChannel>>

export function resolveFactories (opts: RouteOptions, senders: SendersLike): ResolvedRouteOptions {
  if (typeof opts !== 'object' || opts === null) return opts
  const { actions, channels } = opts
  if (typeof actions !== 'function' && typeof channels !== 'function') return opts as unknown as ResolvedRouteOptions
  const resolved = { ...opts } as unknown as ResolvedRouteOptions
  if (typeof actions === 'function') resolved.actions = (actions as (a: typeof identity, s: SendersLike) => Record<string, AnyAction>)(identity, senders)
  if (typeof channels === 'function') resolved.channels = (channels as (c: typeof identity) => Record<string, AnyChannel>)(identity)
  return resolved
}

const kBindSenders = Symbol('fastify-wsx.bindSenders')

/**
 * `defineRoute()` runs the factories before any app exists: its `route` argument forwards to
 * the app the route is registered on (the last one, when a definition is registered twice).
 */
export function resolveDefinedRoute (opts: RouteOptions): ResolvedRouteOptions {
  let bound: SendersLike | null = null
  const target = (): SendersLike => {
    if (bound) return bound
    throw new errors.WSX_ERR_NOT_READY('this route is not registered yet: pass it to scope.wsx.route() first')
  }
  const late: SendersLike = {
    broadcast: (...args) => target().broadcast(...args),
    publish: (...args) => target().publish(...args),
    sendToUser: (...args) => target().sendToUser(...args)
  }
  const resolved = resolveFactories(opts, late)
  if (typeof resolved !== 'object' || resolved === null) return resolved
  const definition = resolved === (opts as unknown) ? { ...resolved } : resolved
  // enumerable: a spread copy (`{ ...route, actions: { ... } }`) keeps it; a symbol key is
  // never an option name, so the unknown-option check does not see it
  Object.defineProperty(definition, kBindSenders, { value: (senders: SendersLike) => { bound = senders }, enumerable: true })
  return definition
}

function bindDefinedRoute (opts: RouteOptions, senders: SendersLike): ResolvedRouteOptions | null {
  const bind = (opts as unknown as Record<symbol, ((s: SendersLike) => void) | undefined>)?.[kBindSenders]
  if (typeof bind !== 'function') return null
  bind(senders)
  return opts as unknown as ResolvedRouteOptions
}

/** Checks route options and compiles the route; throws coded errors at boot. */
export function compileRoute (instance: FastifyInstance, routeOpts: RouteOptions, fullUrl: string, config: WsxConfig, senders: SendersLike): RouteContext {
  if (typeof routeOpts !== 'object' || routeOpts === null) throw new errors.WSX_ERR_ROUTE_INVALID('(unknown)', 'options must be an object')
  const url = fullUrl
  for (const key of Object.keys(routeOpts)) {
    if (!routeOptionKeys.has(key)) throw new errors.WSX_ERR_ROUTE_UNKNOWN_OPTION(key, url)
  }
  const opts = bindDefinedRoute(routeOpts, senders) ?? resolveFactories(routeOpts, senders)
  if (typeof opts.actions !== 'object' || opts.actions === null) throw new errors.WSX_ERR_ROUTE_INVALID(url, 'actions must be an object')

  // the names are the object's own keys: no action can be declared twice
  const actions = new Map<string, CompiledAction>()
  for (const [name, def] of Object.entries(opts.actions)) actions.set(name, compileAction(name, def, url))
  const channels = new Map<string, CompiledChannel>()
  for (const [name, def] of Object.entries(opts.channels ?? {})) channels.set(name, compileChannel(name, def, url))

  const strategies = asArray(opts.authenticate)
  if (strategies.some((s) => typeof s !== 'function')) throw new errors.WSX_ERR_ROUTE_INVALID(url, 'authenticate takes Fastify hook functions')
  if (strategies.some(isAsyncWithDone)) throw new errors.WSX_ERR_ROUTE_INVALID(url, 'an async strategy must not also take done')
  const needsAuth = [...actions.values()].some((a) => !a.public) || channels.size > 0
  if (needsAuth && strategies.length === 0) throw new errors.WSX_ERR_ROUTE_NO_AUTH(url)

  for (const part of ['params', 'querystring'] as const) {
    const schema = opts.schema?.[part]
    if (schema !== undefined && !isTypeBox(schema)) throw new errors.WSX_ERR_SCHEMA_NOT_TYPEBOX(part, 'the upgrade', url)
  }
  for (const [event, schema] of Object.entries(opts.events ?? {})) {
    if (!isTypeBox(schema)) throw new errors.WSX_ERR_SCHEMA_NOT_TYPEBOX('event', event, url)
  }

  // no strategy, nothing to authorize in-band: without this a public-only route would
  // advertise a handshake that cannot succeed and close every client 4401 at its timeout
  const handshakeOpts = opts.handshake === false ? null : checkHandshake(opts.handshake, config.handshake, `handshake of ${url}`)
  const handshake = strategies.length === 0 ? null : handshakeOpts
  const publicNames = [...actions.values()].filter((a) => a.public).map((a) => a.name)
  const mrl = opts.messageRateLimit === undefined ? config.messageRateLimit : opts.messageRateLimit
  if (opts.tokenQueryParam !== undefined && (typeof opts.tokenQueryParam !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(opts.tokenQueryParam))) {
    throw new errors.WSX_ERR_ROUTE_INVALID(url, 'tokenQueryParam must be a query parameter name')
  }
  if (opts.msgpack !== undefined && typeof opts.msgpack !== 'boolean') throw new errors.WSX_ERR_ROUTE_INVALID(url, 'msgpack must be a boolean')
  if (opts.groups !== undefined && typeof opts.groups !== 'function') throw new errors.WSX_ERR_ROUTE_INVALID(url, 'groups must be a function')
  for (const hook of ['onConnect', 'onAuthenticated', 'onDisconnect'] as const) {
    if (opts[hook] !== undefined && typeof opts[hook] !== 'function') throw new errors.WSX_ERR_ROUTE_INVALID(url, `${hook} must be a function`)
  }

  return {
    url,
    credentials: compileCredentials(opts.credentials, url),
    instance,
    options: opts,
    actions,
    publicNames,
    upgradeStrategies: strategies.filter((s) => !isHandshakeOnly(s)),
    handshakeStrategies: strategies,
    handshake,
    channels,
    origins: opts.origins === undefined ? config.origins : checkOrigins(opts.origins, `origins of ${url}`),
    requireOrigin: opts.requireOrigin === true,
    maxPayload: routeMaxPayload(opts.maxPayload, config.maxPayload, url),
    msgpack: opts.msgpack === true,
    connectionRateLimit: compileRate(opts.connectionRateLimit === undefined ? config.connectionRateLimit : opts.connectionRateLimit, `connectionRateLimit of ${url}`, 10_000),
    messageRateLimit: mrl === false ? null : { max: checkThrottle(mrl, `messageRateLimit of ${url}`).max, windowMs: toMilliseconds(mrl.timeWindow ?? 60_000) },
    tokenQueryParam: opts.tokenQueryParam ?? null,
    groups: (opts.groups as RouteContext['groups']) ?? null,
    handshakeFrame: handshake
      ? eventFrame(ServerEvent.handshake, {
        authorize: BuiltinAction.authorize,
        attempts: handshake.attempts,
        lock_seconds: handshake.lockSeconds,
        timeout_seconds: handshake.timeoutSeconds,
        allow_unauth: publicNames
      })
      : '',
    authorizedFrame: eventFrame(ServerEvent.authorized, { authenticated: true, via: 'upgrade' })
  }
}

export type { WsxMessage }
