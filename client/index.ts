// fastify-wsx/client: one client for browsers (global WebSocket) and Node (`ws`), speaking
// the protocol (docs/protocol.md). Runtime imports stay inside client/ and protocol/
// (the wire names, shared with the server, free of Node and Fastify) so the browser build
// carries no Node, Fastify or server code; the route's types arrive through `import type` only.
import { AUTHORIZE_FIELDS, BuiltinAction, CloseCode, ErrorCode, ReadyState, ServerEvent } from '../protocol/index.js'
import { backoffDelay, type BackoffOptions } from './backoff.js'
import { Emitter, callSafely, type Listener } from './emitter.js'
import { WsxClientError, errorFromReply, isObject } from './errors.js'
import type {
  ActionName, ChannelEvent, ChannelName, ChannelParams, ClientEvents, ClientOptions, ClientState,
  ClientCodec, Position, ReadyInfo, ReconnectOptions, RecoveryInfo, ReplyData, RequestArgs, RequestOptions, RouteShape,
  TokenProvider, Via, WebSocketConstructor, WebSocketLike, Credential, AuthorizeCredentials
} from './types.js'

export { WsxClientError } from './errors.js'
export type { ClientErrorCode, LocalErrorCode, ServerErrorCode, WsxClientErrorExtra } from './errors.js'
export { backoffDelay } from './backoff.js'
export type { BackoffOptions } from './backoff.js'
export type * from './types.js'

/**
 * Close codes after which the client reconnects by itself (docs/errors.md#close-codes): going away (1001),
 * internal error (1011), restart (1012), try again later (1013), bad gateway (1014), and
 * the codes a browser reports when the connection was lost without a close frame (1005, 1006),
 * and 4429 (too many messages while throttled: the back-off gives the server its pause).
 * Everything else stops, in particular 4401 / 4403 / 4408, which need new credentials.
 */
const RESUMABLE_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.goingAway, 1005, 1006, CloseCode.internalError, 1012, CloseCode.tryAgainLater, 1014, CloseCode.tooManyMessages
])

const LIFECYCLE: ReadonlySet<string> = new Set(['open', 'close', 'authorized', 'resync', 'expired', 'reconnecting', 'recovery', 'error'])

const DEFAULT_TIMEOUT_MS = 10_000
const DEFAULT_RECONNECT = { retries: Infinity, minDelayMs: 250, maxDelayMs: 10_000, jitter: 0.5 }

/** One request, from the call until its reply, timeout or close. */
interface Job {
  action: string
  data: unknown
  traceId: string | undefined
  resolve: (data: unknown) => void
  reject: (err: WsxClientError) => void
  timer: ReturnType<typeof setTimeout> | undefined
  id: number | undefined
}

/** A channel subscription the server holds for us, shared by every handle on the same params. */
interface SubscriptionEntry {
  channel: string
  params: Record<string, unknown>
  listeners: Set<Listener>
  handles: number
}

interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (err: unknown) => void
  settled: boolean
}

/** A live channel subscription, returned by `client.subscribe()`. */
export interface Subscription<C extends string = string, P = Record<string, unknown>> {
  readonly channel: C
  readonly params: P
  /** Ends this subscription; the server is told once the last handle on the same params is gone. */
  unsubscribe (): Promise<void>
}

/**
 * A fastify-wsx client, typed by the server's route definition `R`.
 * Create it with {@link createClient}.
 */
export class WsxClient<R extends RouteShape = RouteShape> {
  /** The WebSocket URL. */
  readonly url: string
  readonly #WebSocket: WebSocketConstructor
  readonly #protocols: string | string[] | undefined
  readonly #codec: ClientCodec | null
  readonly #headers: Record<string, string> | undefined
  readonly #timeoutMs: number
  readonly #reconnect: (BackoffOptions & { retries: number }) | false
  readonly #emitter = new Emitter()
  readonly #inflight = new Map<number, Job>()
  readonly #subscriptions = new Map<string, SubscriptionEntry>()
  /** the last position seen per history group (`g:` keys) and channel subscription */
  readonly #positions = new Map<string, Position>()
  readonly #recent: number | undefined
  #waiting: Job[] = []
  /** requests held back until the server's last `retry_after` elapsed */
  #held: Job[] = []
  #holdUntil = 0
  #holdTimer: ReturnType<typeof setTimeout> | undefined
  #credential: Credential | TokenProvider | undefined
  #socket: WebSocketLike | null = null
  #state: ClientState = 'connecting'
  #via: Via = null
  #firstFrameSeen = false
  #nextId = 1
  #attempt = 0
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined
  #ready: Deferred<ReadyInfo> = deferred()
  #closed: Deferred<void> = deferred()

  constructor (url: string, opts: ClientOptions<R> = {}) {
    this.url = buildUrl(url, opts.params as Record<string, unknown> | undefined, opts.query as Record<string, unknown> | undefined)
    const WebSocketImpl = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (typeof WebSocketImpl !== 'function') {
      throw new TypeError('fastify-wsx/client: no WebSocket available; pass opts.WebSocket (in Node 20: `import { WebSocket } from \'ws\'`)')
    }
    this.#WebSocket = WebSocketImpl
    this.#codec = opts.codec ?? null
    // a codec is chosen by its subprotocol: offered unless the caller lists protocols itself
    this.#protocols = opts.protocols ?? (this.#codec ? [this.#codec.subprotocol] : undefined)
    this.#headers = opts.headers
    this.#credential = opts.token
    this.#timeoutMs = positive(opts.requestTimeoutMs, DEFAULT_TIMEOUT_MS, 'requestTimeoutMs')
    this.#reconnect = opts.reconnect === false ? false : reconnectPolicy(opts.reconnect ?? {})
    if (opts.recent !== undefined && (!Number.isSafeInteger(opts.recent) || opts.recent < 1)) throw new TypeError('fastify-wsx/client: recent must be a positive integer')
    this.#recent = opts.recent
    this.#open()
  }

  /** Where the client stands. */
  get state (): ClientState { return this.#state }

  /** How the current connection is authenticated (`null`: not, or not yet). */
  get via (): Via { return this.#via }

  /**
   * The last position received in a history-enabled group (`{ group }`) or channel
   * subscription (`{ channel, params }`); what the client recovers from after a reconnect.
   */
  position (where: { group: string } | { channel: string, params: Record<string, unknown> }): Position | undefined {
    const key = 'group' in where ? groupKey(where.group) : subscriptionKey(where.channel, where.params)
    const p = this.#positions.get(key)
    return p && { ...p }
  }

  /**
   * Resolves once the current connection's first frame was handled: authenticated at the
   * upgrade, handshake completed with the token, or a handshake with no token (`via: null`).
   * Rejects when the handshake failed or the client stopped.
   */
  ready (): Promise<ReadyInfo> {
    return this.#ready.promise
  }

  /**
   * Sends a request and resolves with the reply's `data`, typed from the route.
   * Requests made before the connection is ready wait for it (within their timeout).
   * Rejects with a {@link WsxClientError}: the server's `code`, or `timeout` / `closed`.
   * @example const msg = await client.request('chat.send', { text: 'hi' })
   */
  request<K extends ActionName<R>> (action: K, ...args: NoInfer<RequestArgs<R, K>>): Promise<NoInfer<ReplyData<R, K>>> {
    const [data, options] = args as [unknown, RequestOptions | undefined]
    return this.#call(action, data, options, true) as Promise<ReplyData<R, K>>
  }

  /** `socket.ping`, allowed before authentication; resolves with the round trip in milliseconds. */
  async ping (options?: RequestOptions): Promise<number> {
    const started = Date.now()
    await this.#call(BuiltinAction.ping, undefined, options, true)
    return Date.now() - started
  }

  /**
   * Listens to a server event (typed by the route's `events` and its channels' events) or to
   * a lifecycle event (`open`, `close`, `authorized`, `resync`, `expired`, `reconnecting`,
   * `error`). Returns a function that removes the listener.
   */
  on<K extends keyof ClientEvents<R> & string> (event: K, listener: (...args: ClientEvents<R>[K]) => void): () => void {
    return this.#emitter.on(event, listener as Listener)
  }

  /** Removes a listener added with `on`. */
  off<K extends keyof ClientEvents<R> & string> (event: K, listener: (...args: ClientEvents<R>[K]) => void): void {
    this.#emitter.off(event, listener as Listener)
  }

  /**
   * Subscribes to a channel (docs/protocol.md#channelsubscribe-and-channelunsubscribe). The subscription is restored after every
   * reconnect until `unsubscribe()`. `listener` gets the events of this subscription only;
   * `on(event)` listeners get them too, with `channel` and `params` in their meta.
   */
  async subscribe<C extends ChannelName<R>> (channel: C, params: NoInfer<ChannelParams<R, C>>, listener?: (event: NoInfer<ChannelEvent<R, C>>) => void): Promise<Subscription<C, ChannelParams<R, C>>> {
    const key = subscriptionKey(channel, params)
    if (!this.#subscriptions.has(key)) {
      const asked = this.#positions.get(key)
      const reply = await this.#call(BuiltinAction.subscribe, this.#subscribeData(key, channel, params), undefined, true)
      this.#afterSubscribe(key, channel, params as Record<string, unknown>, reply, asked)
    }
    // looked up again: a concurrent subscribe to the same params may have created it meanwhile
    let entry = this.#subscriptions.get(key)
    if (!entry) {
      entry = { channel, params: params as Record<string, unknown>, listeners: new Set(), handles: 0 }
      this.#subscriptions.set(key, entry)
    }
    const held = entry
    held.handles++
    if (listener) held.listeners.add(listener as Listener)
    let active = true
    return {
      channel,
      params,
      unsubscribe: async () => {
        if (!active) return
        active = false
        if (listener) held.listeners.delete(listener as Listener)
        held.handles--
        if (held.handles > 0 || this.#subscriptions.get(key) !== held) return
        this.#subscriptions.delete(key)
        // not connected: the server already forgot it, and it will not be restored
        if (this.#state === 'ready') await this.#call(BuiltinAction.unsubscribe, { channel, params }, undefined, true)
      }
    }
  }

  /**
   * Authenticates with a new token: the handshake, a refresh of an expiring credential, or
   * a resume after the server closed with 4401 / 4403 / 4408. The token (or provider)
   * replaces the one given to `createClient` for later reconnects.
   */
  async authorize (token: Credential | TokenProvider): Promise<ReadyInfo> {
    if (this.#state === 'closed') throw closedError('The client was closed.')
    this.#credential = token
    if (this.#state === 'stopped' || this.#state === 'waiting') return this.connect()
    // the first frame is still to come or being answered: the handshake uses the new credential
    if (this.#state === 'connecting' || this.#state === 'handshake') return this.ready()
    const retry = this.#state === 'unauthenticated'
    const socket = this.#socket
    const via = await this.#sendAuthorize()
    if (retry && socket === this.#socket && this.#state === 'unauthenticated') {
      // ready() rejected with the failed handshake; from now on it reports this success
      this.#ready = deferred()
      this.#becomeReady(via)
    }
    return { via }
  }

  /**
   * Connects again after the client stopped (4401 / 4403 / 4408, or retries exhausted), or
   * skips the wait of a scheduled reconnect. Resolves like `ready()`.
   */
  connect (): Promise<ReadyInfo> {
    if (this.#state === 'closed') return Promise.reject(closedError('The client was closed.'))
    if (this.#state === 'stopped' || this.#state === 'waiting') {
      clearTimeout(this.#reconnectTimer)
      this.#attempt = 0
      this.#open()
    }
    return this.ready()
  }

  /**
   * Closes the connection for good: no reconnect, pending requests reject with `closed`.
   * Resolves once the socket is closed.
   */
  close (code = 1000, reason = ''): Promise<void> {
    if (this.#state === 'closed') return this.#closed.promise
    this.#state = 'closed'
    clearTimeout(this.#reconnectTimer)
    const err = closedError('The client was closed.')
    this.#failWaiting(err)
    settle(this.#ready, err)
    if (this.#socket) {
      this.#socket.close(code, reason)
    } else {
      this.#closed.resolve()
    }
    return this.#closed.promise
  }

  // --- connection -----------------------------------------------------------------------

  #open (): void {
    if (this.#ready.settled) this.#ready = deferred()
    this.#state = 'connecting'
    this.#via = null
    this.#firstFrameSeen = false
    const socket = this.#headers
      ? new this.#WebSocket(this.url, this.#protocols, { headers: this.#headers })
      : this.#protocols !== undefined ? new this.#WebSocket(this.url, this.#protocols) : new this.#WebSocket(this.url)
    this.#socket = socket
    // binary frames as ArrayBuffer in browsers and in ws alike, for the codec to decode
    if (this.#codec) socket.binaryType = 'arraybuffer'
    // every handler checks it still belongs to the current socket: a late event of a
    // replaced socket must not touch the new connection
    socket.addEventListener('open', () => {
      if (socket !== this.#socket) return
      this.#state = 'handshake'
      this.#emitter.emit('open')
    })
    socket.addEventListener('message', (event: { data: unknown }) => {
      if (socket === this.#socket) this.#onMessage(socket, event.data)
    })
    socket.addEventListener('error', (event: { message?: unknown }) => {
      if (socket !== this.#socket || this.#state === 'closed') return
      const detail = typeof event.message === 'string' && event.message ? event.message : 'WebSocket error.'
      this.#emitter.emit('error', new WsxClientError('network_error', detail))
    })
    socket.addEventListener('close', (event: { code: number, reason: string }) => {
      if (socket === this.#socket) this.#onClose(event.code, String(event.reason ?? ''))
    })
  }

  #onClose (code: number, reason: string): void {
    this.#socket = null
    this.#via = null
    // at most once: a request on the wire may or may not have run, so it is not resent
    this.#failInflight(closedError(`The connection closed (${code}).`, code))
    if (this.#state === 'closed') {
      this.#emitter.emit('close', { code, reason, willReconnect: false })
      this.#closed.resolve()
      return
    }
    const policy = this.#reconnect
    if (policy && RESUMABLE_CLOSE_CODES.has(code) && this.#attempt < policy.retries) {
      this.#attempt++
      const delayMs = backoffDelay(this.#attempt, policy)
      this.#state = 'waiting'
      if (this.#ready.settled) this.#ready = deferred()
      this.#emitter.emit('close', { code, reason, willReconnect: true })
      this.#emitter.emit('reconnecting', { attempt: this.#attempt, delayMs })
      // requests not yet sent stay queued: they never left, so sending them later is safe
      this.#reconnectTimer = setTimeout(() => this.#open(), delayMs)
      return
    }
    this.#state = 'stopped'
    const err = closedError(`The connection closed (${code}) and will not reconnect by itself.`, code)
    this.#failWaiting(err)
    if (this.#ready.settled) this.#ready = deferred()
    settle(this.#ready, err)
    this.#emitter.emit('close', { code, reason, willReconnect: false })
  }

  #onMessage (socket: WebSocketLike, raw: unknown): void {
    let frame: unknown
    try {
      frame = this.#codec ? this.#codec.decode(raw) : typeof raw === 'string' ? JSON.parse(raw) : undefined
    } catch {}
    if (!isObject(frame)) {
      this.#emitter.emit('error', new WsxClientError('bad_frame', `The server sent a frame that is not ${this.#codec ? 'a MessagePack map' : 'a JSON object'}.`))
      return
    }
    if (!this.#firstFrameSeen) {
      this.#firstFrameSeen = true
      if (this.#onFirstFrame(socket, frame)) return
    }
    this.#dispatch(frame)
  }

  /** The first frame tells where the connection stands (docs/protocol.md#the-first-frame); true when consumed. */
  #onFirstFrame (socket: WebSocketLike, frame: Record<string, unknown>): boolean {
    if (frame.action === ServerEvent.authorized) {
      this.#becomeReady(viaOf(frame.data) ?? 'upgrade')
      return true
    }
    if (frame.action === ServerEvent.handshake) {
      if (this.#credential === undefined) this.#becomeReady(null)
      else this.#handshake(socket).catch(() => {}) // #handshake handles its own errors
      return true
    }
    // not a fastify-wsx greeting: nothing to wait for
    this.#becomeReady(null)
    return false
  }

  async #handshake (socket: WebSocketLike): Promise<void> {
    let via: Via
    try {
      via = await this.#sendAuthorize()
    } catch (err) {
      // the socket closed meanwhile: its close handling decides what happens next
      if (socket !== this.#socket) return
      const error = toClientError(err)
      this.#emitter.emit('error', error)
      settle(this.#ready, error)
      this.#becomeUnauthenticated()
      return
    }
    if (socket === this.#socket) this.#becomeReady(via)
  }

  /** Sends `socket.authorize` with the current credential (bypassing the ready gate). */
  async #sendAuthorize (): Promise<NonNullable<Via>> {
    const socket = this.#socket
    const credentials = await this.#resolveToken()
    // a slow token provider may outlive the socket: never send one connection's handshake on another
    if (socket === null || socket !== this.#socket) throw closedError('The connection closed while fetching a token.', undefined, BuiltinAction.authorize)
    const data = await this.#call(BuiltinAction.authorize, credentials, undefined, false)
    const via = viaOf(data) ?? 'authorize'
    this.#via = via
    if (this.#state === 'ready') this.#emitter.emit('authorized', { via })
    return via
  }

  /** The `socket.authorize` data: `{ token }` for a string, the known credential fields otherwise. */
  async #resolveToken (): Promise<AuthorizeCredentials> {
    const credential = this.#credential
    const value = typeof credential === 'function' ? await credential() : credential
    if (typeof value === 'string' && value !== '') return { token: value }
    const data: AuthorizeCredentials = {}
    if (typeof value === 'object' && value !== null) {
      for (const key of AUTHORIZE_FIELDS) {
        const field = value[key]
        if (typeof field === 'string' && field !== '') data[key] = field
      }
    }
    if (Object.keys(data).length === 0) {
      throw new WsxClientError(ErrorCode.notAuthenticated, 'No token to authorize with.', { action: BuiltinAction.authorize })
    }
    return data
  }

  /**
   * The handshake failed but the socket is open: public actions still flow (protected ones
   * answer not_authenticated) and `authorize()` may try again. Subscriptions wait for that:
   * every channel needs an authenticated connection.
   */
  #becomeUnauthenticated (): void {
    this.#state = 'unauthenticated'
    this.#via = null
    this.#attempt = 0
    const jobs = this.#waiting
    this.#waiting = []
    for (const job of jobs) this.#send(job)
  }

  #becomeReady (via: Via): void {
    this.#state = 'ready'
    this.#via = via
    this.#attempt = 0
    settle(this.#ready, undefined, { via })
    if (via) this.#emitter.emit('authorized', { via })
    this.#restoreSubscriptions()
    const jobs = this.#waiting
    this.#waiting = []
    for (const job of jobs) this.#send(job)
  }

  /** `channel.subscribe` data: the last position to recover from, or the recent events to show. */
  #subscribeData (key: string, channel: string, params: unknown): Record<string, unknown> {
    const position = this.#positions.get(key)
    if (position) return { channel, params, recover: { offset: position.offset, epoch: position.epoch } }
    if (this.#recent !== undefined) return { channel, params, recover: { last: this.#recent } }
    return { channel, params }
  }

  /**
   * Reads the position of a history channel's subscribe reply; reports a recovery.
   * `asked`: the position sent (read before sending: the replay may be handled before this runs).
   */
  #afterSubscribe (key: string, channel: string, params: Record<string, unknown>, reply: unknown, asked: Position | undefined): void {
    if (!isObject(reply)) return
    this.#takePosition(key, reply)
    if (typeof reply.recovered === 'boolean' && asked !== undefined) {
      this.#emitRecovery({ channel, params, recovered: reply.recovered, ...positionOf(reply), ...(asked && reply.recovered && { from: asked.offset }) })
    }
  }

  #restoreSubscriptions (): void {
    for (const [key, entry] of this.#subscriptions) {
      const asked = this.#positions.get(key)
      this.#call(BuiltinAction.subscribe, this.#subscribeData(key, entry.channel, entry.params), undefined, false).then((reply) => {
        if (this.#subscriptions.get(key) === entry) this.#afterSubscribe(key, entry.channel, entry.params, reply, asked)
      }, (err: unknown) => {
        const error = toClientError(err)
        if (error.code === 'closed') return // the next reconnect restores it again
        // refused now (e.g. permission revoked): drop it rather than retry forever
        if (this.#subscriptions.get(key) === entry) this.#subscriptions.delete(key)
        this.#emitter.emit('error', error)
      })
    }
  }

  // --- frames ---------------------------------------------------------------------------

  #dispatch (frame: Record<string, unknown>): void {
    if (typeof frame.id === 'number') {
      const job = this.#inflight.get(frame.id)
      if (job) {
        this.#settleJob(job, frame)
        return
      }
    }
    if (frame.ok === false) {
      // an error without a request to reject (e.g. `"id": null` for a frame the server could not read)
      this.#emitter.emit('error', errorFromReply(frame.error, { traceId: frame.trace_id }))
      return
    }
    // a late reply (timed out) or a frame without an action: nothing to do
    if (frame.ok === true || (frame.id !== undefined && frame.id !== null) || typeof frame.action !== 'string') return
    switch (frame.action) {
      case ServerEvent.expired: this.#onExpired(frame.data); return
      case ServerEvent.resync: this.#emitter.emit('resync', { groups: stringsOf(isObject(frame.data) ? frame.data.groups : undefined) }); return
      case ServerEvent.groupJoined: this.#onGroupJoined(frame.data); return
      case ServerEvent.authorized: case ServerEvent.handshake: return
    }
    this.#onServerEvent(frame.action, frame)
  }

  #onServerEvent (action: string, frame: Record<string, unknown>): void {
    const meta: { action: string, channel?: string, params?: Record<string, unknown>, group?: string, offset?: number, epoch?: string, traceId?: string } = { action }
    if (typeof frame.trace_id === 'string') meta.traceId = frame.trace_id
    const positioned = typeof frame.offset === 'number' && typeof frame.epoch === 'string'
    if (positioned) {
      meta.offset = frame.offset as number
      meta.epoch = frame.epoch as string
    }
    if (typeof frame.group === 'string') {
      meta.group = frame.group
      if (positioned) this.#takePosition(groupKey(frame.group), frame)
    }
    if (typeof frame.channel === 'string') {
      const params = isObject(frame.params) ? frame.params : {}
      meta.channel = frame.channel
      meta.params = params
      const key = subscriptionKey(frame.channel, params)
      if (positioned) this.#takePosition(key, frame)
      const entry = this.#subscriptions.get(key)
      if (entry) {
        const event = { action, data: frame.data, channel: frame.channel, params, ...(meta.traceId !== undefined && { traceId: meta.traceId }) }
        for (const listener of [...entry.listeners]) callSafely(listener, [event])
      }
    }
    if (!LIFECYCLE.has(action)) this.#emitter.emit(action, frame.data, meta)
  }

  /**
   * The server joined us to a history group and holds its live events until we answer:
   * recover from our last position in it, ask for the recent events, or start from here.
   */
  #onGroupJoined (data: unknown): void {
    if (!isObject(data) || typeof data.group !== 'string') return
    const group = data.group
    const key = groupKey(group)
    const asked = this.#positions.get(key)
    const request: Record<string, unknown> = { group }
    if (asked) Object.assign(request, asked)
    else if (this.#recent !== undefined) request.last = this.#recent
    else Object.assign(request, positionOf(data))
    this.#call(BuiltinAction.recover, request, undefined, false).then((reply) => {
      if (!isObject(reply)) return
      this.#takePosition(key, reply)
      if (asked && typeof reply.recovered === 'boolean') {
        this.#emitRecovery({ group, recovered: reply.recovered, ...positionOf(reply), ...(reply.recovered && { from: asked.offset }) })
      }
    }, (err: unknown) => {
      const error = toClientError(err)
      if (error.code !== 'closed') this.#emitter.emit('error', error)
    })
  }

  /** Remembers a position (an event's, or a reply's); a newer epoch replaces an older one. */
  #takePosition (key: string, source: Record<string, unknown>): void {
    const next = positionOf(source)
    if (next.offset === undefined || next.epoch === undefined) return
    const current = this.#positions.get(key)
    if (current && current.epoch === next.epoch && current.offset >= next.offset) return
    this.#positions.set(key, { offset: next.offset, epoch: next.epoch })
  }

  #emitRecovery (info: RecoveryInfo): void {
    this.#emitter.emit('recovery', info)
  }

  #onExpired (data: unknown): void {
    const grace = isObject(data) ? data.grace_seconds : undefined
    this.#emitter.emit('expired', { graceSeconds: typeof grace === 'number' ? grace : 0 })
    // a provider can mint a fresh token; a fixed string cannot, so the app handles `expired`
    if (typeof this.#credential !== 'function') return
    this.#sendAuthorize().catch((err: unknown) => {
      const error = toClientError(err)
      if (error.code !== 'closed') this.#emitter.emit('error', error)
    })
  }

  // --- requests -------------------------------------------------------------------------

  /** Starts a request; `gated` ones wait until the connection is ready. */
  #call (action: string, data: unknown, options: RequestOptions | undefined, gated: boolean): Promise<unknown> {
    if (this.#state === 'closed') return Promise.reject(closedError('The client was closed.', undefined, action))
    if (this.#state === 'stopped') return Promise.reject(closedError('The client is stopped; call connect() or authorize().', undefined, action))
    let timeoutMs: number
    try {
      timeoutMs = positive(options?.timeoutMs, this.#timeoutMs, 'timeoutMs')
    } catch (err) {
      return Promise.reject(err)
    }
    return new Promise((resolve, reject) => {
      const job: Job = { action, data, traceId: options?.traceId, resolve, reject, timer: undefined, id: undefined }
      job.timer = setTimeout(() => this.#expire(job, timeoutMs), timeoutMs)
      if (this.#mustHold(action)) this.#hold(job)
      else if (!gated || this.#state === 'ready' || this.#state === 'unauthenticated') this.#send(job)
      else this.#waiting.push(job)
    })
  }

  #send (job: Job): void {
    // ids are assigned at send time, so they increase on the wire
    const id = this.#nextId++
    job.id = id
    const frame: Record<string, unknown> = { id, action: job.action }
    if (job.data !== undefined) frame.data = job.data
    if (job.traceId !== undefined) frame.trace_id = job.traceId
    this.#inflight.set(id, job)
    // a socket that is closing drops the frame; its close event rejects the job
    if (this.#socket?.readyState === ReadyState.open) this.#socket.send(this.#codec ? this.#codec.encode(frame) : JSON.stringify(frame))
  }

  /**
   * After a `throttled` answer, the server counts requests sent before its `retry_after`
   * elapsed as ignoring it (and closes 4429 after a few): the client holds them back
   * until then, so an app that simply retries stays a client that waits as told.
   * `socket.*` frames (ping, authorize) are never throttled and never held.
   */
  #mustHold (action: string): boolean {
    return !action.startsWith('socket.') && Date.now() < this.#holdUntil
  }

  #hold (job: Job): void {
    this.#held.push(job)
    if (this.#holdTimer !== undefined) return
    this.#holdTimer = setTimeout(() => this.#releaseHeld(), Math.max(0, this.#holdUntil - Date.now()))
  }

  #releaseHeld (): void {
    this.#holdTimer = undefined
    if (Date.now() < this.#holdUntil) {
      this.#holdTimer = setTimeout(() => this.#releaseHeld(), this.#holdUntil - Date.now())
      return
    }
    const jobs = this.#held
    this.#held = []
    for (const job of jobs) {
      if (this.#state === 'ready') this.#send(job)
      else this.#waiting.push(job)
    }
  }

  #settleJob (job: Job, frame: Record<string, unknown>): void {
    clearTimeout(job.timer)
    if (job.id !== undefined) this.#inflight.delete(job.id)
    if (frame.ok === false && isObject(frame.error) && frame.error.code === ErrorCode.throttled && typeof frame.error.retry_after === 'number') {
      this.#holdUntil = Math.max(this.#holdUntil, Date.now() + frame.error.retry_after * 1000)
    }
    if (frame.ok === false) job.reject(errorFromReply(frame.error, { action: job.action, traceId: frame.trace_id }))
    else job.resolve(frame.data)
  }

  #expire (job: Job, timeoutMs: number): void {
    if (job.id !== undefined) this.#inflight.delete(job.id)
    else {
      this.#waiting = this.#waiting.filter((queued) => queued !== job)
      this.#held = this.#held.filter((queued) => queued !== job)
    }
    const extra: { action: string, traceId?: string } = { action: job.action }
    if (job.traceId !== undefined) extra.traceId = job.traceId
    job.reject(new WsxClientError('timeout', `No reply to ${job.action} within ${timeoutMs} ms.`, extra))
  }

  #failInflight (err: WsxClientError): void {
    const jobs = [...this.#inflight.values()]
    this.#inflight.clear()
    for (const job of jobs) rejectJob(job, err)
  }

  #failWaiting (err: WsxClientError): void {
    const jobs = [...this.#waiting, ...this.#held]
    this.#waiting = []
    this.#held = []
    clearTimeout(this.#holdTimer)
    this.#holdTimer = undefined
    for (const job of jobs) rejectJob(job, err)
  }
}

/**
 * Creates a client for one fastify-wsx route, typed by the route's definition, and connects.
 * @example
 * import type { chatRoute } from './server/routes.js'
 * const client = createClient<typeof chatRoute>('wss://example.com/ws/chat/general', { token: () => getToken() })
 * const reply = await client.request('chat.send', { text: 'hello' }) // typed from the route
 */
export function createClient<R extends RouteShape = RouteShape> (url: string, opts?: ClientOptions<NoInfer<R>>): WsxClient<R> {
  return new WsxClient<R>(url, opts)
}

/**
 * `wss://host/ws/chat/:room` + `{ room: 'a b' }` → `wss://host/ws/chat/a%20b`, plus the query.
 * A `:name` left without a value is refused: the server would answer 404 or 400.
 */
function buildUrl (url: string, params?: Record<string, unknown>, query?: Record<string, unknown>): string {
  const [base = '', search] = url.split('?', 2) as [string, string | undefined]
  // the path starts after `scheme://host:port`: a port is not a param
  const hostStart = base.indexOf('//') + 2
  const pathStart = base.indexOf('/', hostStart) < 0 ? base.length : base.indexOf('/', hostStart)
  const path = base.slice(pathStart).replace(/:([A-Za-z0-9_]+)/g, (whole, name: string) => {
    const value = params?.[name]
    if (value === undefined || value === null) throw new TypeError(`fastify-wsx/client: the URL needs params.${name}`)
    return encodeURIComponent(String(value))
  })
  const extra = Object.entries(query ?? {}).filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
  const qs = [search, ...extra].filter(Boolean).join('&')
  return base.slice(0, pathStart) + path + (qs ? `?${qs}` : '')
}

// --- helpers ------------------------------------------------------------------------------

function deferred<T> (): Deferred<T> {
  const d = { settled: false } as Deferred<T>
  d.promise = new Promise<T>((resolve, reject) => { d.resolve = resolve; d.reject = reject })
  // a rejection nobody awaited is expected (e.g. ready() never called): not an unhandled one
  d.promise.catch(() => {})
  return d
}

/** Settles a deferred once: rejects with `err` when given, else resolves with `value`. */
function settle<T> (d: Deferred<T>, err: unknown, value?: T): void {
  if (d.settled) return
  d.settled = true
  if (err !== undefined) d.reject(err)
  else d.resolve(value as T)
}

function rejectJob (job: Job, err: WsxClientError): void {
  clearTimeout(job.timer)
  job.reject(err.action === undefined ? new WsxClientError(err.code, err.detail, { action: job.action, ...(err.closeCode !== undefined && { closeCode: err.closeCode }) }) : err)
}

function closedError (detail: string, closeCode?: number, action?: string): WsxClientError {
  return new WsxClientError('closed', detail, { ...(closeCode !== undefined && { closeCode }), ...(action !== undefined && { action }) })
}

function toClientError (err: unknown): WsxClientError {
  if (err instanceof WsxClientError) return err
  return new WsxClientError(ErrorCode.notAuthenticated, err instanceof Error ? `The token provider failed: ${err.message}` : 'The token provider failed.')
}

function viaOf (data: unknown): NonNullable<Via> | undefined {
  const via = isObject(data) ? data.via : undefined
  return via === 'upgrade' || via === 'authorize' ? via : undefined
}

function groupKey (group: string): string {
  return `g\u0000${group}`
}

/** `offset` and `epoch` of a frame or reply, when both are there. */
function positionOf (value: Record<string, unknown>): { offset?: number, epoch?: string } {
  return typeof value.offset === 'number' && typeof value.epoch === 'string' ? { offset: value.offset, epoch: value.epoch } : {}
}

function stringsOf (value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
}

/** Identity of a subscription: the channel and its params with keys sorted at every level. */
function subscriptionKey (channel: string, params: unknown): string {
  return `${channel}\u0000${JSON.stringify(sortKeys(params))}`
}

function sortKeys (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (!isObject(value)) return value
  const sorted: Record<string, unknown> = {}
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeys(value[key])
  return sorted
}

function positive (value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0)) throw new TypeError(`fastify-wsx/client: ${name} must be a positive number`)
  return value
}

function reconnectPolicy (opts: ReconnectOptions): BackoffOptions & { retries: number } {
  const policy = { ...DEFAULT_RECONNECT, ...withoutUndefined(opts) }
  if (!(policy.retries >= 0)) throw new TypeError('fastify-wsx/client: reconnect.retries must be >= 0')
  if (!(policy.minDelayMs >= 0) || !(policy.maxDelayMs >= policy.minDelayMs)) {
    throw new TypeError('fastify-wsx/client: reconnect delays must satisfy 0 <= minDelayMs <= maxDelayMs')
  }
  if (!(policy.jitter >= 0 && policy.jitter <= 1)) throw new TypeError('fastify-wsx/client: reconnect.jitter must be within 0 and 1')
  return policy
}

function withoutUndefined<T extends object> (obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>
}
