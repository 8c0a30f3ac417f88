// `app.wsx`: the decorator every scope sees. It is a getter, so `scope.wsx.route()`
// declares the route in *that* encapsulated context (its decorators, hooks, prefix).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { Core } from './core.js'
import type { Bus } from '../broadcast/bus.js'
import { compileRate, compileRoute, type CompiledChannel, type RouteContext } from '../boot/route.js'
import { compileValidator } from '../boot/validation.js'
import { Connection } from '../connection/connection.js'
import { WsxSocket } from '../connection/low-level-socket.js'
import { eventFrame, historyHead } from '../connection/envelope.js'
import { compileHistory, type HistoryConfig, type HistoryOptions } from '../broadcast/history.js'
import { errors } from '../errors.js'
import { CloseCode } from '../../protocol/index.js'
import { assertGroupName } from '../broadcast/group-name.js'
import { releaseUpgradeResponse } from '../fastify/internals.js'
import { authenticateUpgrade, kUpgradeLock, kUpgradeUser, redactingReqSerializer, type UpgradeGuard } from '../upgrade/hooks.js'
import type { BroadcastOptions, RouteOptions, RouteSenders, WsxRoute } from '../../types/options.js'
import type { LockInfo } from '../security/auth-lock.js'
import type { AnyAction, AnyChannel, EventDataMap, SomeConnection } from '../../types/route.js'
import type { WsxEventMap } from '../../types/registry.js'
import type { WsxSchema } from '../../types/schema.js'
import type { WsxStatsSnapshot } from './stats.js'
import { buildAsyncApi, type AsyncApiOptions } from '../boot/asyncapi.js'
import { describeRoutes } from '../boot/describe.js'
import type { RouteDescription } from '../../types/describe.js'

export interface WsxShared {
  core: Core
  bus: Bus
  routes: RouteContext[]
  channels: Map<string, CompiledChannel>
  /** awaits every instance's answer to a control request (user push/disconnect) */
  request: (kind: string, payload: Record<string, unknown>) => Promise<number>
}

/** What `app.wsx.history()` reads: the history's position and its newest events, oldest first. */
export interface HistorySnapshot {
  epoch: string
  /** the offset of the newest event (0: none yet) */
  offset: number
  events: Array<{ offset: number, action: string, data: unknown }>
}

export class WsxFacade {
  private readonly instance: FastifyInstance
  private readonly shared: WsxShared

  constructor (instance: FastifyInstance, shared: WsxShared) {
    this.instance = instance
    this.shared = shared
  }

  /**
   * Declares a WebSocket route with actions. Fails at boot on bad options.
   * @example
   * scope.wsx.route({ url: '/ws/chat/:room', authenticate: [scope.authenticate], actions: { 'chat.send': action({ ... }) } })
   */
  route<
    const A extends Record<string, AnyAction>,
    const C extends Record<string, AnyChannel> = Record<never, AnyChannel>,
    const E extends Record<string, WsxSchema> = Record<never, WsxSchema>,
    P extends WsxSchema | undefined = undefined,
    Q extends WsxSchema | undefined = undefined
  > (opts: RouteOptions<A, C, E, P, Q>): WsxRoute<A, C, E, P, Q> {
    const { core } = this.shared
    const fullUrl = joinUrl(this.instance.prefix, opts?.url)
    const route = compileRoute(this.instance, opts as unknown as RouteOptions, fullUrl, core.config, routeSenders(this))
    for (const channel of route.channels.values()) {
      if (channel.history && !core.historyStore) throw new errors.WSX_ERR_HISTORY_UNSUPPORTED(`channel ${channel.name} on ${fullUrl}`)
    }
    this.registerChannels(route)
    this.registerEvents(route)
    this.shared.routes.push(route)
    const guard: UpgradeGuard = { origins: route.origins, requireOrigin: route.requireOrigin, connectionRateLimit: route.connectionRateLimit, msgpack: route.msgpack }
    this.instance.route({
      method: 'GET',
      url: opts.url,
      schema: { ...(opts.schema?.params && { params: opts.schema.params }), ...(opts.schema?.querystring && { querystring: opts.schema.querystring }) },
      preValidation: [authenticateUpgrade(route, core)],
      ...(route.tokenQueryParam && { logSerializers: { req: redactingReqSerializer(route.tokenQueryParam) } }),
      config: { wsxGuard: guard },
      handler: upgradeRequired,
      wsHandler: function wsxHandler (socket: WebSocket, request: FastifyRequest) {
        releaseUpgradeResponse(socket)
        const conn = new Connection(socket, request, route, core)
        const stash = request as unknown as Record<symbol, unknown>
        conn.start(stash[kUpgradeUser], stash[kUpgradeLock] as LockInfo | undefined)
      }
    })
    return routeHandle(route.options, this) as unknown as WsxRoute<A, C, E, P, Q>
  }

  /**
   * Declares a route with no envelope: the handler drives the socket (receive / iterate /
   * send text, bytes, JSON; close with a code). Runs the scope's hooks at the upgrade.
   */
  socket (url: string, handler: (this: FastifyInstance, socket: WsxSocket) => unknown, opts: { schema?: { params?: WsxSchema, querystring?: WsxSchema } } = {}): void {
    const core = this.shared.core
    const log = this.instance.log
    const fullUrl = joinUrl(this.instance.prefix, url)
    const guard: UpgradeGuard = {
      origins: core.config.origins,
      requireOrigin: false,
      connectionRateLimit: compileRate(core.config.connectionRateLimit, 'connectionRateLimit', 10_000)
    }
    this.instance.route({
      method: 'GET',
      url,
      schema: { ...opts.schema },
      // the same upgrade checks as envelope routes (docs/protocol.md#low-level-routes): a low-level route is no
      // less exposed to cross-site WebSocket hijacking or connection floods
      config: { wsxGuard: guard },
      handler: upgradeRequired,
      wsHandler: function wsxSocketHandler (this: FastifyInstance, ws: WebSocket, request: FastifyRequest) {
        releaseUpgradeResponse(ws)
        const socket = new WsxSocket(ws, request, core, fullUrl)
        Promise.resolve().then(() => handler.call(this, socket)).catch((err: unknown) => {
          log.error({ err }, 'wsx socket handler failed')
          socket.close(CloseCode.internalError, 'Internal error')
        })
      }
    })
  }

  /**
   * Declares how groups behave, by exact name or by prefix (`'room:*'`). `history` keeps
   * their newest events with offsets, so clients recover what they missed (`group.recover`).
   * Declare groups at boot, before they are used.
   * @example app.wsx.group('room:*', { history: { size: 100, ttl: '5m' } })
   */
  group (pattern: string, opts: { history: HistoryOptions }): void {
    const core = this.shared.core
    if (typeof opts !== 'object' || opts === null) throw new errors.WSX_ERR_OPTS_INVALID(`group(${String(pattern)}, opts): opts must be { history }`)
    for (const key of Object.keys(opts)) {
      if (key !== 'history') throw new errors.WSX_ERR_OPTS_INVALID(`group(${String(pattern)}): "${key}" is not an option`)
    }
    if (!core.historyStore) throw new errors.WSX_ERR_HISTORY_UNSUPPORTED(`group ${String(pattern)}`)
    core.historyRules.add(pattern, compileHistory(opts.history, `history of group ${String(pattern)}`))
  }

  /**
   * Sends an event to every member of a group, on every instance. Serialized once.
   * In a group with history, the event is stored first and carries its `offset` and `epoch`.
   * @example await app.wsx.broadcast('room:general', 'chat.message', { text: 'hi' })
   */
  broadcast<K extends keyof WsxEventMap & string> (group: string, action: K, data: NoInfer<WsxEventMap[K]>, opts: BroadcastOptions = {}): Promise<void> {
    assertGroupName(group)
    const core = this.shared.core
    core.checkEvent(action, data)
    const exclude = typeof opts.exclude === 'string' ? opts.exclude : opts.exclude?.id
    core.stats.busPublished++
    const history = core.historyStore === null || core.historyRules.empty ? null : core.historyRules.lookup(group)
    if (history) return core.historyStore!.publish(group, history, historyHead(action, data, { group }), exclude).then(noop)
    return core.groups.broadcast(group, eventFrame(action, data), exclude === undefined ? undefined : { exclude })
  }

  /** Sends an event to a channel's subscribers; the frame carries `channel` and `params`. */
  publish<K extends keyof WsxEventMap & string> (channel: string, params: Record<string, unknown>, action: K, data: NoInfer<WsxEventMap[K]>, opts: BroadcastOptions = {}): Promise<void> {
    const def = this.shared.channels.get(channel)
    if (!def) throw new errors.WSX_ERR_CHANNEL_INVALID(channel, '(any)', 'no route declares this channel')
    if (!def.validate(params)) throw new errors.WSX_ERR_CHANNEL_INVALID(channel, '(any)', 'params do not match the channel schema')
    const core = this.shared.core
    core.checkEvent(action, data)
    const exclude = typeof opts.exclude === 'string' ? opts.exclude : opts.exclude?.id
    core.stats.busPublished++
    if (def.history && core.historyStore) {
      return core.historyStore.publish(def.group(params), def.history, historyHead(action, data, { channel, params }), exclude).then(noop)
    }
    return core.groups.broadcast(def.group(params), eventFrame(action, data, { channel, params }), exclude === undefined ? undefined : { exclude })
  }

  /**
   * Reads a history: a group's (`'room:general'`) or a channel subscription's
   * (`{ channel, params }`), the newest `last` events (default: all it holds, up to the
   * history's `maxReplay`). For an HTTP endpoint that refetches after `recovered: false`.
   * @example const { epoch, offset, events } = await app.wsx.history('room:general', { last: 50 })
   */
  async history (target: string | { channel: string, params: Record<string, unknown> }, opts: { last?: number } = {}): Promise<HistorySnapshot> {
    const core = this.shared.core
    let group: string
    let cfg: HistoryConfig | null
    if (typeof target === 'string') {
      assertGroupName(target)
      group = target
      cfg = core.historyRules.lookup(target)
    } else {
      const def = this.shared.channels.get(target?.channel)
      if (!def) throw new errors.WSX_ERR_CHANNEL_INVALID(String(target?.channel), '(any)', 'no route declares this channel')
      if (!def.validate(target.params)) throw new errors.WSX_ERR_CHANNEL_INVALID(target.channel, '(any)', 'params do not match the channel schema')
      group = def.group(target.params)
      cfg = def.history
    }
    if (!cfg || !core.historyStore) throw new errors.WSX_ERR_NOT_READY(`no history is declared for ${typeof target === 'string' ? `group ${target}` : `channel ${target.channel}`}`)
    const last = opts.last ?? cfg.maxReplay
    if (!Number.isSafeInteger(last) || last < 1 || last > cfg.maxReplay) throw new errors.WSX_ERR_OPTS_INVALID(`history({ last }) must be an integer from 1 to ${cfg.maxReplay}`)
    const read = await core.historyStore.read(group, cfg, -last, cfg.maxReplay)
    return {
      epoch: read.epoch,
      offset: read.top,
      events: read.events.map((e) => {
        const frame = JSON.parse(e.frame) as { action: string, data: unknown }
        return { offset: e.offset, action: frame.action, data: frame.data }
      })
    }
  }

  /** Pushes an event to every connection of a user (all devices), on every instance. */
  async sendToUser<K extends keyof WsxEventMap & string> (user: string, action: K, data: NoInfer<WsxEventMap[K]>): Promise<number> {
    this.shared.core.checkEvent(action, data)
    return this.shared.request('user-send', { user, frame: eventFrame(action, data) })
  }

  /** Closes every connection of a user (4403 by default), on every instance; resolves how many. */
  async disconnectUser (user: string, opts: { code?: number, reason?: string } = {}): Promise<number> {
    return this.shared.request('user-close', { user, code: opts.code ?? CloseCode.forbidden, reason: opts.reason ?? 'Disconnected' })
  }

  /** Who is in a group, across instances: users with their connection counts, sorted. */
  async presence (group: string): Promise<Array<{ user: string, connections: number }>> {
    assertGroupName(group)
    const presence = this.shared.core.presence
    if (!presence) throw new errors.WSX_ERR_NOT_READY('presence is off (plugin option presence: false)')
    return presence.list(group)
  }

  /** Counters: connections, messages per action and outcome, handler latency, bus state. */
  stats (): WsxStatsSnapshot {
    return this.shared.core.stats.snapshot({ received: this.shared.core.groups.received, up: this.shared.bus.up })
  }

  /** Local connections on this instance (read-only view). */
  get connections (): ReadonlySet<SomeConnection> {
    return this.shared.core.connections as unknown as ReadonlySet<SomeConnection>
  }

  /**
   * An AsyncAPI 3.0 document of every route registered so far (call it after `ready()`).
   * @example app.get('/asyncapi.json', async () => app.wsx.asyncapi({ info: { title: 'Chat', version: '1.0.0' } }))
   */
  asyncapi (opts: AsyncApiOptions = {}): Record<string, unknown> {
    return buildAsyncApi(this.describeRoutes(), opts) as Record<string, unknown>
  }

  /**
   * Every route declared so far, app-wide, as plain JSON data: URL and path params, auth
   * (upgrade, in-band handshake), msgpack, actions (public, schemas, throttles, permission
   * names), built-ins, events and channels. What the AsyncAPI document and the playground
   * are built from. A fresh copy on each call (README, AsyncAPI, playground and the demo page).
   * @example app.get('/routes', async () => app.wsx.describeRoutes().map((r) => r.url))
   */
  describeRoutes (): RouteDescription[] {
    return describeRoutes(this.shared.routes)
  }

  /**
   * The compiled routes, as the server runs them.
   * @deprecated Internal and subject to change: read `describeRoutes()` instead.
   */
  get routes (): readonly RouteContext[] {
    return this.shared.routes
  }

  /** Compiles the route's and its channels' event schemas, so sends can be checked. */
  private registerEvents (route: RouteContext): void {
    const validators = this.shared.core.eventValidators
    const declared: Array<[string, WsxSchema]> = [
      ...Object.entries(route.options.events ?? {}),
      ...[...route.channels.values()].flatMap((c) => Object.entries(c.events ?? {}))
    ]
    for (const [name, schema] of declared) {
      const existing = validators.get(name)
      if (existing) {
        if (existing.schema !== schema) throw new errors.WSX_ERR_EVENT_CONFLICT(name, route.url)
        continue
      }
      validators.set(name, { schema, validate: compileValidator(schema, `event ${name}`) })
    }
  }

  private registerChannels (route: RouteContext): void {
    for (const [name, channel] of route.channels) {
      const existing = this.shared.channels.get(name)
      if (existing && existing.params !== channel.params) {
        throw new errors.WSX_ERR_CHANNEL_INVALID(name, route.url, 'another route declares a different channel with this name')
      }
      this.shared.channels.set(name, channel)
    }
  }
}

/** The facade's sends, under a route's types (what the route handle and `actions`' second argument carry). */
function routeSenders (facade: WsxFacade): RouteSenders<EventDataMap, Record<string, AnyChannel>> {
  return {
    // the route's types are checked at compile time; the facade's are the app-wide registry's
    broadcast: (group, action, data, o) => facade.broadcast(group, action as never, data as never, o),
    publish: (channel, params, action, data, o) => facade.publish(channel, params as Record<string, unknown>, action as never, data as never, o),
    sendToUser: (user, action, data) => facade.sendToUser(user, action as never, data as never)
  }
}

/**
 * The route handle: the options the app passed (copied, so the app's object stays as it
 * was) plus the facade's sends. The sends are not enumerable: spreading a handle into
 * another route's options copies options only.
 */
function routeHandle<R extends object> (opts: R, facade: WsxFacade): R & RouteSenders<EventDataMap, Record<string, AnyChannel>> {
  const senders = routeSenders(facade)
  const handle = { ...opts }
  for (const [name, fn] of Object.entries(senders)) Object.defineProperty(handle, name, { value: fn, enumerable: false })
  return handle as R & typeof senders
}

function noop (): void {}

/** A plain GET on a WebSocket route. */
function upgradeRequired (_request: FastifyRequest, reply: FastifyReply): void {
  reply.code(426).header('upgrade', 'websocket').send({ statusCode: 426, error: 'Upgrade Required', message: 'This is a WebSocket endpoint.' })
}

function joinUrl (prefix: string, url: unknown): string {
  if (typeof url !== 'string' || !url.startsWith('/')) throw new errors.WSX_ERR_ROUTE_INVALID(String(url), 'url must be a string starting with "/"')
  return (prefix ?? '') + url
}
