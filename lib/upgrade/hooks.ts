// The HTTP side of a WebSocket route (docs/protocol.md#checks-in-order): origin, capacity and connection rate
// checks in one root `onRequest` hook (in that order, so bad origins cost nothing), then
// the route's auth strategies in `preValidation`, then Fastify's own params/querystring
// validation. The first that fails answers over HTTP and no socket opens.
import type { FastifyReply, FastifyRequest, preValidationHookHandler } from 'fastify'
import type { Core } from '../instance/core.js'
import type { RouteContext } from '../boot/route.js'
import { normaliseOrigin } from '../boot/config.js'
import { MSGPACK_SUBPROTOCOL, SUBPROTOCOL } from '../../protocol/index.js'
import { runAuthentication, takeInBandSlot, type AuthResult } from './authenticate.js'
import { checkLock, countFailure, lockPolicy, type LockInfo } from '../security/auth-lock.js'
import { hasExplicitCredential } from './credentials.js'

const OUTAGE_LOG_INTERVAL_MS = 10_000

/** Where the upgrade-time identity waits for the socket handler. */
export const kUpgradeUser = Symbol('fastify-wsx.upgradeUser')
/** Marks a raw upgrade request whose route speaks MessagePack, for `handleProtocols`. */
const kMsgpackRoute = Symbol('fastify-wsx.msgpackRoute')

/**
 * The `ws` subprotocol choice: `wsx.v1.msgpack` only where the route opted in (the guard
 * marked the request), else `wsx.v1` when offered, else none. A client that offered only
 * `wsx.v1.msgpack` to a JSON route gets no subprotocol back, and fails its own handshake.
 */
export function selectSubprotocol (protocols: Set<string>, request: object): string | false {
  if ((request as Record<symbol, unknown>)[kMsgpackRoute] === true && protocols.has(MSGPACK_SUBPROTOCOL)) return MSGPACK_SUBPROTOCOL
  return protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false
}

function refuse (reply: FastifyReply, statusCode: number, message: string): FastifyReply {
  const error = statusCode === 401 ? 'Unauthorized' : statusCode === 403 ? 'Forbidden' : statusCode === 429 ? 'Too Many Requests' : 'Service Unavailable'
  return reply.code(statusCode).send({ statusCode, error, message })
}

/**
 * Same-origin: the Origin's scheme and host equal the connection's own (TLS or not) and
 * the Host the request was sent to; forwarded headers never count. Behind a TLS-terminating
 * proxy the browser's https origin differs from what this server sees: configure `origins`.
 */
function sameOrigin (origin: string, host: string | undefined, secure: boolean): boolean {
  if (!host) return false
  const url = new URL(origin)
  if (url.protocol !== (secure ? 'https:' : 'http:')) return false
  const defaultPort = url.protocol === 'https:' ? '443' : '80'
  const h = host.toLowerCase()
  const normalisedHost = h.endsWith(`:${defaultPort}`) ? h.slice(0, -defaultPort.length - 1) : h
  return url.host === normalisedHost
}

function isTls (request: FastifyRequest): boolean {
  return (request.raw.socket as { encrypted?: boolean } | null)?.encrypted === true
}

/** What the guard needs to know about a route; kept in the route's Fastify `config`. */
export interface UpgradeGuard {
  origins: string[] | '*' | null
  requireOrigin: boolean
  connectionRateLimit: { max: number, windowMs: number } | null
  /** the route accepts the `wsx.v1.msgpack` subprotocol */
  msgpack?: boolean
}

function originAllowed (guard: UpgradeGuard, request: FastifyRequest): boolean {
  const raw = request.headers.origin
  if (raw === undefined) return !guard.requireOrigin
  if (guard.origins === '*') return true
  // Node joins duplicate Origin headers with ", ", which no origin contains: refused here
  const origin = normaliseOrigin(raw)
  if (origin === null) return false
  return guard.origins === null ? sameOrigin(origin, request.headers.host, isTls(request)) : guard.origins.includes(origin)
}

/**
 * The upgrade checks (docs/protocol.md#checks-in-order), for every wsx route: origin (403), then capacity (503/429),
 * then the connection rate per client address (429 + Retry-After). It is a root
 * `onRequest` hook, so it runs before any hook the app added in its own scopes: bad
 * origins and floods never reach the app's code. Plain HTTP requests pass untouched.
 */
export function upgradeGuard (core: Core) {
  let lastOutageLog = 0
  return async function wsxUpgradeGuard (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    if (request.headers.upgrade === undefined) return
    const guard = (request.routeOptions.config as { wsxGuard?: UpgradeGuard }).wsxGuard
    if (guard === undefined) return
    if (!originAllowed(guard, request)) return refuse(reply, 403, 'Origin not allowed.')
    if (core.closing) return refuse(reply.header('retry-after', '1'), 503, 'Server is shutting down.')
    const room = core.hasRoomFor(request.ip)
    if (room === 'instance') return refuse(reply.header('retry-after', '1'), 503, 'Too many connections.')
    if (room === 'ip') return refuse(reply.header('retry-after', '1'), 429, 'Too many connections from this address.')
    const rate = guard.connectionRateLimit
    if (rate !== null) {
      const key = `upgrade:${request.ip}`
      const result = core.limiter.consumeNow?.(key, rate.max, rate.windowMs) ?? await core.limiter.consume(key, rate.max, rate.windowMs)
      if (!result.allowed) {
        const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000))
        if (result.error) {
          // the store could not count: not the client's fault, so not a 429
          if (Date.now() - lastOutageLog >= OUTAGE_LOG_INTERVAL_MS) {
            lastOutageLog = Date.now()
            core.log.warn('wsx: Redis is unreachable; answering upgrades 503 until it is back')
          }
          return refuse(reply.header('retry-after', String(seconds)), 503, 'Temporarily unavailable.')
        }
        return refuse(reply.header('retry-after', String(seconds)), 429, 'Too many connection attempts.')
      }
    }
    if (guard.msgpack === true) (request.raw as unknown as Record<symbol, unknown>)[kMsgpackRoute] = true
  }
}

/** Where a locked address's lock waits for the socket handler (for its `socket.handshake`). */
export const kUpgradeLock = Symbol('fastify-wsx.upgradeLock')

function answerLocked (reply: FastifyReply, lock: LockInfo): FastifyReply {
  // the store could not answer (Redis unreachable): not the client's fault, so not a 429
  if (lock.storeError) return refuse(reply.header('retry-after', String(Math.max(1, lock.retryAfter))), 503, 'Temporarily unavailable.')
  return refuse(reply.header('retry-after', String(Math.max(1, lock.retryAfter))), 429, 'Too many failed authentications; try again later.')
}

/** Replays a refusal the strategies chose (status, headers such as WWW-Authenticate, body). */
function answerRefusal (reply: FastifyReply, result: AuthResult): FastifyReply {
  for (const [name, value] of Object.entries(result.headers)) {
    if (value !== undefined && name !== 'content-length') reply.header(name, value)
  }
  if (result.payload !== undefined) return reply.code(result.status).send(result.payload)
  return refuse(reply, result.status, result.status === 403 ? 'Forbidden.' : 'Authentication failed.')
}

/**
 * The route's `preValidation`: the upgrade decision table (docs/protocol.md#authentication-at-the-upgrade).
 * The strategies run on every upgrade of a route that has any (they may use cookies or
 * any header), except from a locked address. Success opens authenticated `via: upgrade`.
 * Failure opens with `socket.handshake` on a route with the in-band handshake, unless the
 * upgrade carried an explicit credential (Authorization, the API-key header, a query
 * token): then it answers 401 (or what the strategy replied) and counts toward the lock.
 * It also serves the in-band requests `socket.authorize` makes (lib/upgrade/authenticate.ts).
 */
export function authenticateUpgrade (route: RouteContext, core: Core): preValidationHookHandler {
  const timeoutMs = core.config.hookTimeout
  return async function authenticateWsxUpgrade (this: unknown, request: FastifyRequest, reply: FastifyReply) {
    // per-message hooks get reply shims with this route's reply decorators
    route.replyProto ??= Object.getPrototypeOf(reply) as object
    const slot = takeInBandSlot(request)
    if (slot !== null) {
      slot(await runAuthentication(route, request, route.handshakeStrategies, { inband: true, timeoutMs, replyProto: Object.getPrototypeOf(reply) as object }))
      return reply.code(204).send()
    }
    if (route.handshakeStrategies.length === 0) return
    if (route.tokenQueryParam) moveQueryToken(request, route.tokenQueryParam)
    const explicit = hasExplicitCredential(request.headers, route.credentials)
    const lock = await checkLock(core, request.ip)
    if (lock.locked) {
      if (explicit || !route.handshake) return answerLocked(reply, lock)
      ;(request as unknown as Record<symbol, unknown>)[kUpgradeLock] = lock
      return
    }
    const strategies = route.upgradeStrategies
    if (strategies.length === 0) {
      if (route.handshake) return
      return refuse(reply, 401, 'Authentication required.')
    }
    const result = await runAuthentication(route, request, strategies, { inband: false, timeoutMs, replyProto: Object.getPrototypeOf(reply) as object })
    if (result.ok) {
      ;(request as unknown as Record<symbol, unknown>)[kUpgradeUser] = result.user
      return
    }
    if (result.fault !== undefined) request.log.error({ err: result.fault }, 'wsx: an authentication strategy failed at the upgrade')
    if (route.handshake && !explicit) return
    if (explicit || request.headers.cookie !== undefined) await countFailure(core, request.ip, lockPolicy(core, route.handshake))
    else core.stats.authFailures++
    return answerRefusal(reply, result)
  }
}

/** A query token becomes the Bearer header the strategies read, and leaves the query. */
function moveQueryToken (request: FastifyRequest, param: string): void {
  const query = request.query as Record<string, unknown>
  const token = query?.[param]
  if (typeof token !== 'string' || token.length === 0 || request.headers.authorization) return
  // on the raw headers too: some strategies (@fastify/bearer-auth) read `request.raw.headers`
  request.raw.headers.authorization = `Bearer ${token}`
  delete query[param]
}

/** Fastify's default `req` log serializer, minus the token query parameter. */
export function redactingReqSerializer (param: string) {
  const pattern = new RegExp(`([?&]${param}=)[^&]*`, 'g')
  return function serializeWsxRequest (req: { method?: string, url?: string, version?: string, host?: string, hostname?: string, ip?: string, socket?: { remotePort?: number } }) {
    return {
      method: req.method,
      url: req.url?.replace(pattern, '$1[REDACTED]'),
      version: req.version,
      host: req.host ?? req.hostname,
      remoteAddress: req.ip,
      remotePort: req.socket?.remotePort
    }
  }
}
