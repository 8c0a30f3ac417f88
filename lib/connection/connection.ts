// One Connection per socket. Listeners are attached in the constructor, before any
// await, so no frame is lost while authentication or anything else is pending; frames
// then go through one ordered queue. Nothing thrown here reaches the process.
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { RawData, WebSocket } from 'ws'
import type { Core } from '../instance/core.js'
import type { RouteContext } from '../boot/route.js'
import { CloseCode, MSGPACK_SUBPROTOCOL, ReadyState, ServerEvent } from '../../protocol/index.js'
import { eventFrame } from './envelope.js'
import { jsonFrameToMessagePack } from './msgpack-codec.js'
import { createReplyShim, createRequestView, type ViewSource } from '../fastify/request-view.js'
import { captureRouteContext, replaceSocketErrorListener } from '../fastify/internals.js'
import { withoutQueryParam } from '../upgrade/credentials.js'
import { lockedHandshakeFields, type LockInfo } from '../security/auth-lock.js'
import { dispatchFrame } from './dispatch.js'
import { userKeyOf } from './user-key.js'
import { heartbeatTick } from './heartbeat.js'
import { MessageBudget } from '../security/budget.js'
import { SLOW_READER_REASON, isOverBuffered, rawByteLength, terminateAfterGrace } from './backpressure.js'
import type { AuthVia, WsxConnection } from '../../types/route.js'
import type { HistoryConfig } from '../broadcast/history.js'
import { announceGroup, dropHold, holdFrame, releaseHold, startHold, type Hold } from '../broadcast/recovery.js'
import type { WsxEventMap } from '../../types/registry.js'

// group frames arrive as a shared Buffer; ws would send a Buffer as a binary frame, and
// JSON routes speak text frames only (docs/protocol.md#frame-types)
const AS_TEXT = { binary: false } as const
const AS_BINARY = { binary: true } as const

const kConnection = Symbol('fastify-wsx.connection')

function connectionOf (socket: unknown): Connection {
  return (socket as Record<symbol, Connection>)[kConnection]!
}
function onSocketMessage (this: WebSocket, data: RawData, binary: boolean): void { connectionOf(this).onFrame(data, binary) }
function onSocketClose (this: WebSocket, code: number): void { connectionOf(this).onClose(code) }
function onSocketError (this: WebSocket, err: Error): void { connectionOf(this).onSocketError(err) }
function onSocketPong (this: WebSocket): void { connectionOf(this).pong() }

function lockedHandshakeFrame (route: RouteContext, lock: LockInfo): string {
  const h = route.handshake!
  return eventFrame(ServerEvent.handshake, {
    authorize: 'socket.authorize',
    attempts: h.attempts,
    lock_seconds: h.lockSeconds,
    timeout_seconds: h.timeoutSeconds,
    allow_unauth: route.publicNames,
    ...lockedHandshakeFields(lock)
  })
}

export class Connection implements WsxConnection<unknown> {
  readonly id: string
  readonly socket: WebSocket
  readonly route: RouteContext
  readonly core: Core
  readonly params: Record<string, unknown>
  readonly query: Record<string, unknown>
  readonly headers: IncomingHttpHeaders
  readonly ip: string
  readonly url: string
  /** the URL the upgrade was made to, a query token removed (request views' `url`) */
  readonly requestUrl: string
  /** `request.cookies` / `request.session` of the upgrade, or of the request that authorized in-band */
  cookies: unknown
  session: unknown
  readonly groupSet = new Set<string>()
  readonly debug: boolean
  /** the client picked `wsx.v1.msgpack`: binary MessagePack frames both ways */
  readonly msgpack: boolean
  user: unknown = null
  userKey: string | null = null
  authenticated = false
  via: AuthVia | null = null
  /** true between `socket.expired` and a refresh: protected actions answer not_authenticated */
  expired = false
  closed = false
  /** malformed frames in a row (decode.ts) */
  badFrames = 0
  /** the message budget and the run of `throttled` answers (lib/security/budget.ts) */
  readonly budget = new MessageBudget()
  // the message loop, written only here: the queue exists only once a frame had to wait
  private queue: Array<{ data: RawData, binary: boolean, size: number }> | null = null
  /** bytes of the frames in `queue`, bounded by `maxQueuedBytes` */
  private queuedBytes = 0
  private running = 0
  private barrier = false
  /** history groups whose live frames wait for a recovery (lib/broadcast/recovery.ts) */
  holds: Map<string, Hold> | null = null
  private missedPongs = 0
  private handshakeTimer: NodeJS.Timeout | null = null
  /** the `exp` second this connection waits for in the core's expiry wheel */
  private expiresAt: number | null = null
  private graceTimer: NodeJS.Timeout | null = null
  private readonly requestId: string
  private _log?: FastifyBaseLogger
  private _state?: Record<string, unknown>
  private _request?: FastifyRequest
  private _subscriptions?: Map<string, { channel: string, params: Record<string, unknown>, history: HistoryConfig | null }>

  constructor (socket: WebSocket, request: FastifyRequest, route: RouteContext, core: Core) {
    this.socket = socket
    this.route = route
    this.core = core
    this.id = core.nextConnectionId()
    this.params = request.params as Record<string, unknown>
    this.query = request.query as Record<string, unknown>
    this.headers = request.headers
    this.ip = request.ip
    this.url = route.url
    this.requestUrl = withoutQueryParam(request.url, route.tokenQueryParam)
    const r = request as { cookies?: unknown, session?: unknown }
    this.cookies = r.cookies
    this.session = r.session ?? undefined
    this.requestId = request.id
    this.msgpack = socket.protocol === MSGPACK_SUBPROTOCOL
    this.debug = (route.instance.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('debug') ?? false
    // what every request of this route shares, captured once per route, not per socket
    if (route.requestProto === undefined) {
      route.requestProto = Object.getPrototypeOf(request) as object
      route.requestContext = captureRouteContext(request)
    }

    // Synchronously, before anything can await: every frame from now on is queued.
    // @fastify/websocket's own error listener closes over the upgrade request and reply,
    // keeping both alive for the socket's life; ours keeps neither, and calls the app's
    // `websocket.errorHandler` itself (onSocketError). The listeners are shared functions
    // (no closures per socket): they find the connection on the socket.
    ;(socket as unknown as Record<symbol, Connection>)[kConnection] = this
    replaceSocketErrorListener(socket, onSocketError)
    socket.on('message', onSocketMessage)
    socket.on('close', onSocketClose)
    socket.on('pong', onSocketPong)

    core.added(this)
    core.stats.connectionOpened(route.url)
  }

  /** A child of the route's logger bound to the upgrade's request id, made on first use. */
  get log (): FastifyBaseLogger {
    return (this._log ??= this.route.instance.log.child({ reqId: this.requestId }))
  }

  /** channel subscriptions by group, so events can carry `channel` and `params` */
  get subscriptions (): Map<string, { channel: string, params: Record<string, unknown>, history: HistoryConfig | null }> {
    return (this._subscriptions ??= new Map())
  }

  /** The history of a group this connection is in: its channel's, or the app's group rules. */
  historyOf (group: string): HistoryConfig | null {
    return this._subscriptions?.get(group)?.history ?? this.core.historyRules.lookup(group)
  }

  get state (): Record<string, unknown> {
    return (this._state ??= {})
  }

  get groups (): ReadonlySet<string> {
    return this.groupSet
  }

  /** A request view with the upgrade's headers, params, query and the current user. */
  get request (): FastifyRequest {
    if (!this._request || (this._request as { user?: unknown }).user !== this.user) this._request = createRequestView(this.viewSource())
    return this._request
  }

  viewSource (): ViewSource {
    return {
      proto: this.route.requestProto!,
      routeContext: this.route.requestContext ?? null,
      id: this.requestId,
      url: this.requestUrl,
      ip: this.ip,
      headers: this.headers,
      params: this.params,
      query: this.query,
      log: this.log,
      user: this.user,
      cookies: this.cookies,
      session: this.session
    }
  }

  /** After an in-band success: per-message views see the cookies and session that authorized. */
  keepCredentials (result: { cookies?: unknown, session?: unknown }): void {
    if (result.cookies !== undefined) this.cookies = result.cookies
    if (result.session !== undefined) this.session = result.session
    this._request = undefined
  }

  /** Sends the first frame and starts the handshake timer; called right after construction. */
  start (upgradeUser: unknown, lock?: LockInfo): void {
    if (upgradeUser !== undefined) {
      if (!this.setIdentity(upgradeUser, 'upgrade')) return
      this.sendRaw(this.route.authorizedFrame)
      this.scheduleExpiry()
      // onConnect before onAuthenticated, as for connections that authorize in-band
      this.runHook('onConnect')
      this.afterAuthenticated()
      return
    }
    if (this.route.handshake) {
      // a locked address learns it up front: no attempts left, and when the lock ends
      this.sendRaw(lock?.locked ? lockedHandshakeFrame(this.route, lock) : this.route.handshakeFrame)
      this.handshakeTimer = setTimeout(() => {
        if (!this.authenticated) this.close(CloseCode.notAuthenticated, 'Authentication timeout')
      }, this.route.handshake.timeoutSeconds * 1000)
    } else {
      this.sendRaw(eventFrame(ServerEvent.authorized, { authenticated: false, via: null }))
    }
    this.runHook('onConnect')
  }

  /** Records who this is; false (and closes) when the user is at the connection cap. */
  setIdentity (user: unknown, via: AuthVia): boolean {
    const key = userKeyOf(user)
    if (key !== null && !this.core.addUser(this, key)) {
      this.close(CloseCode.policyViolation, 'Too many connections for this user')
      return false
    }
    this.user = user
    this.userKey = key
    this.authenticated = true
    this.via = via
    return true
  }

  afterAuthenticated (): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer)
    const groups = this.route.groups?.(this as never)
    for (const g of groups === undefined ? [] : Array.isArray(groups) ? groups : [groups]) {
      this.join(g).catch((err: unknown) => this.log.warn({ err, group: g }, 'wsx: automatic group join failed'))
    }
    this.runHook('onAuthenticated')
  }

  /** Schedules `socket.expired` at the credential's `exp` (seconds since epoch), if any. */
  scheduleExpiry (): void {
    this.clearExpiry()
    const exp = (this.user as { exp?: unknown } | null)?.exp
    // without a handshake there is no way to refresh: the credential still ends at exp
    // (socket.expired with grace 0, then 4401) rather than living as long as the socket
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return
    this.expiresAt = exp
    this.core.expiries.add(this, exp)
  }

  /** Called by the core's expiry wheel when the credential's `exp` has come. */
  expire (): void {
    // an expiry due at scheduling time arrives as a microtask: a refresh may have come first
    if (this.expiresAt === null) return
    this.expiresAt = null
    this.onExpired()
  }

  clearExpiry (): void {
    if (this.expiresAt !== null) this.core.expiries.remove(this, this.expiresAt)
    this.expiresAt = null
    if (this.graceTimer) clearTimeout(this.graceTimer)
    this.expired = false
  }

  private onExpired (): void {
    if (this.closed) return
    const grace = this.route.handshake?.expiryGraceSeconds ?? 0
    this.expired = true
    this.sendRaw(eventFrame(ServerEvent.expired, { grace_seconds: grace }))
    this.graceTimer = setTimeout(() => this.close(CloseCode.notAuthenticated, 'Credential expired'), grace * 1000)
  }

  onFrame (data: RawData, binary: boolean): void {
    if (this.closed) return
    if (this.barrier || this.running >= this.core.config.maxInflight) {
      const queue = (this.queue ??= [])
      const size = rawByteLength(data)
      // bounded in messages and in bytes: maxQueued frames of maxPayload each is too much memory
      if (queue.length >= this.core.config.maxQueued || this.queuedBytes + size > this.core.config.maxQueuedBytes) {
        this.close(CloseCode.tryAgainLater, 'Too many queued messages')
        return
      }
      queue.push({ data, binary, size })
      this.queuedBytes += size
      return
    }
    dispatchFrame(this, data, binary)
  }

  /** Frames being worked on now (shutdown waits for them). */
  get inflight (): number {
    return this.running
  }

  /** A frame starts its stages; a barrier (socket.authorize) holds every frame behind it. */
  takeSlot (barrier: boolean): void {
    if (barrier) this.barrier = true
    this.running++
  }

  /** A frame has been answered: frees its slot and starts what waited behind it. */
  releaseSlot (barrier: boolean): void {
    this.running--
    if (barrier) this.barrier = false
    this.pump()
  }

  /** Starts queued frames while the barrier is down and there is room. */
  private pump (): void {
    const queue = this.queue
    if (queue === null) return
    while (queue.length > 0 && !this.barrier && this.running < this.core.config.maxInflight && !this.closed) {
      const next = queue.shift()!
      this.queuedBytes -= next.size
      dispatchFrame(this, next.data, next.binary)
    }
  }

  /** Writes a frame; a reader over the buffer cap is closed with 1013. */
  sendRaw (frame: string | Buffer): boolean {
    const socket = this.socket
    if (socket.readyState !== ReadyState.open) return false
    if (isOverBuffered(socket, this.core.config.maxBufferedBytes)) {
      this.closeSlowReader()
      return false
    }
    // frames are built as JSON text; a MessagePack connection gets them converted
    if (this.msgpack) socket.send(jsonFrameToMessagePack(frame), AS_BINARY)
    else socket.send(frame, AS_TEXT)
    this.core.stats.messagesOut++
    return true
  }

  /** Group/bus delivery: the same Buffer for every member. */
  deliver (frame: Buffer, group: string, offset?: number): void {
    if (this.holds !== null) {
      const hold = this.holds.get(group)
      if (hold !== undefined) {
        holdFrame(this, hold, frame, offset)
        return
      }
    }
    this.sendRaw(frame)
  }

  send<K extends keyof WsxEventMap & string> (action: K, data: NoInfer<WsxEventMap[K]>): boolean {
    this.core.checkEvent(action, data)
    return this.sendRaw(eventFrame(action, data))
  }

  async join (group: string): Promise<void> {
    const fresh = !this.groupSet.has(group)
    const history = fresh && this.core.historyStore ? this.historyOf(group) : null
    // a group joined here (not by channel.subscribe, which recovers in its reply) holds its
    // live frames until the client answers group.joined with group.recover, or holdMs passed
    const announce = history !== null && !this.holds?.has(group)
    if (announce) startHold(this, group, history.holdMs)
    try {
      await this.core.groups.join(this, group, history)
    } catch (err) {
      releaseHold(this, group, 0)
      throw err
    }
    if (announce) await announceGroup(this, group, history)
    if (fresh) await this.presenceChanged(group, 'join')
  }

  async leave (group: string): Promise<void> {
    if (!this.groupSet.has(group)) return
    // frames held for a recovery belong to a membership that is over
    if (this.holds?.has(group)) dropHold(this, group)
    await this.core.groups.leave(this, group)
    await this.presenceChanged(group, 'leave')
  }

  /** Records a membership change in the presence store and, when enabled, tells the group. */
  private async presenceChanged (group: string, change: 'join' | 'leave'): Promise<void> {
    const { config, presence } = this.core
    const user = this.userKey ?? this.id
    if (presence && config.presenceTracked?.(group)) {
      await (change === 'join' ? presence.add(group, this.id, user) : presence.remove(group, this.id))
    }
    if (config.presenceEvents?.(group)) {
      await this.core.groups.broadcast(group, eventFrame(change === 'join' ? ServerEvent.presenceJoin : ServerEvent.presenceLeave, { group, user }))
    }
  }

  close (code: number = CloseCode.normal, reason = ''): void {
    if (this.closed) return
    this.closed = true
    try {
      this.socket.close(code, reason)
    } catch {
      this.socket.terminate()
    }
  }

  /**
   * A socket error (ws closes the socket after it): the app's `websocket.errorHandler`
   * when it set one, called as @fastify/websocket would (`this` the route's instance), with
   * the connection's request view and a reply stand-in (the upgrade's own were released);
   * else a debug line. Whatever the handler throws is logged, never thrown.
   */
  onSocketError (err: Error): void {
    const handler = this.core.config.socketErrorHandler
    if (handler === null) {
      this.log.debug({ err }, 'wsx socket error')
      return
    }
    try {
      const request = this.request
      handler.call(this.route.instance, err, this.socket, request, createReplyShim(request, this.log, this.route.replyProto))
    } catch (thrown) {
      this.log.error({ err: thrown }, 'wsx: the websocket errorHandler threw')
    }
  }

  /** Called by the core's heartbeat interval. */
  pong (): void {
    this.missedPongs = 0
  }

  heartbeat (): void {
    this.missedPongs = heartbeatTick(this.socket, this.missedPongs)
  }

  closeSlowReader (): void {
    if (this.closed) return
    this.close(CloseCode.tryAgainLater, SLOW_READER_REASON)
    // the close frame waits behind the unread backlog; don't wait for it forever
    terminateAfterGrace(this.socket)
  }

  onClose (code: number): void {
    this.closed = true
    this.queue = null
    if (this.holds !== null) {
      for (const hold of this.holds.values()) if (hold.timer) clearTimeout(hold.timer)
      this.holds = null
    }
    this.queuedBytes = 0
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer)
    this.clearExpiry()
    this.core.removed(this)
    this.core.stats.connectionClosed(this.route.url, code)
    for (const group of [...this.groupSet]) this.leave(group).catch(() => {})
    this.runHook('onDisconnect', code)
  }

  private runHook (name: 'onConnect' | 'onAuthenticated' | 'onDisconnect', code?: number): void {
    const hook = this.route.options[name] as ((this: unknown, conn: unknown, code?: number) => unknown) | undefined
    if (!hook) return
    try {
      Promise.resolve(hook.call(this.route.instance, this, code)).catch((err: unknown) => this.log.error({ err }, `wsx ${name} hook failed`))
    } catch (err) {
      this.log.error({ err }, `wsx ${name} hook failed`)
    }
  }
}
