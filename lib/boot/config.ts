// Plugin options → a frozen config with every default filled in, checked at boot.
import { errors } from '../errors.js'
import { assertNamespace } from '../broadcast/group-name.js'
import type { HandshakeOptions, WsxPluginOptions, ConnectionRateLimit, WebsocketErrorHandler } from '../../types/options.js'
import type { ThrottleOptions } from '../../types/route.js'

export interface WsxConfig {
  maxPayload: number
  maxDepth: number
  origins: string[] | '*' | null
  connectionRateLimit: ConnectionRateLimit | false
  maxConnections: number
  maxConnectionsPerUser: number
  maxConnectionsPerIp: number
  messageRateLimit: ThrottleOptions | false
  maxThrottledInARow: number
  maxBadFrames: number
  maxInflight: number
  maxQueued: number
  maxQueuedBytes: number
  maxBufferedBytes: number
  maxGroupsPerConnection: number
  heartbeatMs: number
  handshake: Required<HandshakeOptions>
  /** ms one strategy or preHandler hook may take */
  hookTimeout: number
  logIgnore: Set<string>
  namespace: string
  shutdown: { graceMs: number, windowMs: number }
  /** groups whose membership is tracked in the presence store */
  presenceTracked: ((group: string) => boolean) | null
  /** groups whose members get presence.join / presence.leave events */
  presenceEvents: ((group: string) => boolean) | null
  /** the app's `websocket.errorHandler`, which envelope connections call on a socket error */
  socketErrorHandler: WebsocketErrorHandler | null
}

const known = new Set<string>([
  'maxPayload', 'maxDepth', 'origins', 'connectionRateLimit', 'maxConnections', 'maxConnectionsPerUser',
  'maxConnectionsPerIp', 'messageRateLimit', 'maxThrottledInARow', 'maxBadFrames', 'maxInflight', 'maxQueued',
  'maxQueuedBytes', 'maxBufferedBytes', 'maxGroupsPerConnection', 'heartbeatMs', 'handshake', 'logIgnore', 'emitter', 'redis',
  'namespace', 'shutdown', 'websocket', 'presence', 'hookTimeout'
])

export const defaultHandshake: Required<HandshakeOptions> = {
  attempts: 2, lockSeconds: 20, timeoutSeconds: 20, strict: false, expiryGraceSeconds: 30
}

function positiveInt (name: string, value: unknown, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || (value as number) < (allowZero ? 0 : 1)) {
    throw new errors.WSX_ERR_OPTS_INVALID(`${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer`)
  }
  return value as number
}

export function checkHandshake (value: HandshakeOptions | undefined, base: Required<HandshakeOptions>, where: string): Required<HandshakeOptions> {
  if (value === undefined) return base
  if (typeof value !== 'object' || value === null) throw new errors.WSX_ERR_OPTS_INVALID(`${where} must be an object`)
  for (const key of Object.keys(value)) {
    if (!(key in defaultHandshake)) throw new errors.WSX_ERR_OPTS_INVALID(`${where}.${key} is not an option`)
  }
  return {
    attempts: positiveInt(`${where}.attempts`, value.attempts, base.attempts),
    lockSeconds: positiveInt(`${where}.lockSeconds`, value.lockSeconds, base.lockSeconds),
    timeoutSeconds: positiveInt(`${where}.timeoutSeconds`, value.timeoutSeconds, base.timeoutSeconds),
    expiryGraceSeconds: positiveInt(`${where}.expiryGraceSeconds`, value.expiryGraceSeconds, base.expiryGraceSeconds, true),
    strict: value.strict ?? base.strict
  }
}

export function checkOrigins (value: unknown, where: string): string[] | '*' | null {
  if (value === undefined) return null
  if (value === '*') return '*'
  if (!Array.isArray(value) || value.some((o) => typeof o !== 'string')) {
    throw new errors.WSX_ERR_OPTS_INVALID(`${where} must be an array of origins or '*'`)
  }
  return value.map((o: string) => {
    const normalised = normaliseOrigin(o)
    if (normalised === null) throw new errors.WSX_ERR_OPTS_INVALID(`${where}: "${o}" is not an origin (scheme://host[:port])`)
    return normalised
  })
}

/** scheme://host[:port] with a lower-case host and the default port dropped; null when not an origin. */
export function normaliseOrigin (value: string): string | null {
  let url: URL
  try { url = new URL(value) } catch { return null }
  if (url.origin === 'null' || (url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username) return null
  return url.origin
}

export function checkThrottle (value: unknown, where: string): ThrottleOptions {
  if (typeof value !== 'object' || value === null) throw new errors.WSX_ERR_OPTS_INVALID(`${where} must be { max, timeWindow }`)
  const t = value as ThrottleOptions
  // max is required: a missing one must not silently become a limit of `undefined`
  // (which refused every message)
  if (!Number.isSafeInteger(t.max) || t.max < 1) throw new errors.WSX_ERR_OPTS_INVALID(`${where}.max must be a positive integer`)
  if (t.timeWindow !== undefined && typeof t.timeWindow !== 'number' && typeof t.timeWindow !== 'string') {
    throw new errors.WSX_ERR_OPTS_INVALID(`${where}.timeWindow must be milliseconds or a duration string`)
  }
  return t
}

const everyGroup = (): boolean => true

function checkPresence (value: WsxPluginOptions['presence']): Pick<WsxConfig, 'presenceTracked' | 'presenceEvents'> {
  if (value === false) return { presenceTracked: null, presenceEvents: null }
  if (value === undefined) return { presenceTracked: everyGroup, presenceEvents: null }
  if (typeof value !== 'object' || value === null) throw new errors.WSX_ERR_OPTS_INVALID('presence must be false or { groups?, events? }')
  for (const key of Object.keys(value)) {
    if (key !== 'groups' && key !== 'events') throw new errors.WSX_ERR_OPTS_INVALID(`presence.${key} is not an option`)
  }
  for (const key of ['groups', 'events'] as const) {
    if (value[key] !== undefined && typeof value[key] !== 'function') throw new errors.WSX_ERR_OPTS_INVALID(`presence.${key} must be a function (group) => boolean`)
  }
  return { presenceTracked: value.groups ?? everyGroup, presenceEvents: value.events ?? null }
}

/**
 * The WebSocket server enforces its own `maxPayload` before any frame reaches a route:
 * one set through `websocket.options` that differs from the plugin's would silently
 * override every route's limit, so it must agree (or be left out).
 */
function checkWebsocketMaxPayload (opts: WsxPluginOptions, maxPayload: number): void {
  const ws = (opts.websocket as { options?: { maxPayload?: unknown } } | undefined)?.options?.maxPayload
  if (ws !== undefined && ws !== maxPayload) {
    throw new errors.WSX_ERR_OPTS_INVALID('websocket.options.maxPayload differs from maxPayload; set maxPayload only')
  }
}

export function buildConfig (opts: WsxPluginOptions): WsxConfig {
  for (const key of Object.keys(opts)) {
    if (!known.has(key)) throw new errors.WSX_ERR_OPTS_INVALID(`"${key}" is not an option`)
  }
  const namespace = opts.namespace ?? 'wsx'
  assertNamespace(namespace)
  const crl = opts.connectionRateLimit
  const shutdown = {
    graceMs: positiveInt('shutdown.graceMs', opts.shutdown?.graceMs, 5000, true),
    windowMs: positiveInt('shutdown.windowMs', opts.shutdown?.windowMs, 1000, true)
  }
  // the drain runs inside Fastify's close, which gives up after 10 s (avvio's timeout)
  if (shutdown.graceMs + shutdown.windowMs > 9000) throw new errors.WSX_ERR_OPTS_INVALID('shutdown.graceMs + shutdown.windowMs must be at most 9000 ms')
  const maxPayload = positiveInt('maxPayload', opts.maxPayload, 64 * 1024)
  const maxQueuedBytes = positiveInt('maxQueuedBytes', opts.maxQueuedBytes, 16 * maxPayload)
  // a frame of maxPayload bytes must fit in the queue, or a busy connection could never queue it
  if (maxQueuedBytes < maxPayload) throw new errors.WSX_ERR_OPTS_INVALID('maxQueuedBytes must be at least maxPayload')
  checkWebsocketMaxPayload(opts, maxPayload)
  return {
    maxPayload,
    maxDepth: positiveInt('maxDepth', opts.maxDepth, 32),
    origins: checkOrigins(opts.origins, 'origins'),
    connectionRateLimit: crl === false ? false : crl === undefined ? { max: 100, timeWindow: 10_000 } : checkThrottle(crl, 'connectionRateLimit'),
    maxConnections: positiveInt('maxConnections', opts.maxConnections, 10_000),
    maxConnectionsPerUser: positiveInt('maxConnectionsPerUser', opts.maxConnectionsPerUser, 32),
    maxConnectionsPerIp: positiveInt('maxConnectionsPerIp', opts.maxConnectionsPerIp, 256),
    messageRateLimit: opts.messageRateLimit === false
      ? false
      : opts.messageRateLimit === undefined ? { max: 100, timeWindow: 10_000 } : checkThrottle(opts.messageRateLimit, 'messageRateLimit'),
    maxThrottledInARow: positiveInt('maxThrottledInARow', opts.maxThrottledInARow, 10),
    maxBadFrames: positiveInt('maxBadFrames', opts.maxBadFrames, 10),
    maxInflight: positiveInt('maxInflight', opts.maxInflight, 1),
    maxQueued: positiveInt('maxQueued', opts.maxQueued, 256),
    maxQueuedBytes,
    maxBufferedBytes: positiveInt('maxBufferedBytes', opts.maxBufferedBytes, 1024 * 1024),
    maxGroupsPerConnection: positiveInt('maxGroupsPerConnection', opts.maxGroupsPerConnection, 128),
    heartbeatMs: positiveInt('heartbeatMs', opts.heartbeatMs, 25_000, true),
    handshake: checkHandshake(opts.handshake, defaultHandshake, 'handshake'),
    hookTimeout: positiveInt('hookTimeout', opts.hookTimeout, 10_000),
    logIgnore: new Set(opts.logIgnore ?? ['socket.ping']),
    namespace,
    shutdown,
    ...checkPresence(opts.presence),
    // @fastify/websocket checks it is a function, when it registers
    socketErrorHandler: typeof opts.websocket?.errorHandler === 'function' ? opts.websocket.errorHandler : null
  }
}
