// The HTTP side of a WebSocket route (PROTOCOL §2): origin, capacity and connection rate
// checks as route `onRequest` hooks (in that order, so bad origins cost nothing), then
// the route's auth strategies in `preValidation`, then Fastify's own params/querystring
// validation. The first that fails answers over HTTP and no socket opens.
import type { FastifyReply, FastifyRequest, onRequestHookHandler, preValidationHookHandler } from 'fastify'
import type { Core } from '../lib/core.js'
import type { RouteContext } from '../lib/route.js'
import { normaliseOrigin } from '../lib/config.js'
import { runStrategies } from '../lib/hooks.js'

/** Where the upgrade-time identity waits for the socket handler. */
export const kUpgradeUser = Symbol('fastify-wsx.upgradeUser')

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

export function originCheck (route: RouteContext): onRequestHookHandler {
  return function checkOrigin (request, reply, done) {
    const raw = request.headers.origin
    if (raw === undefined) {
      if (route.requireOrigin) return refuse(reply, 403, 'Origin required.')
      return done()
    }
    if (route.origins === '*') return done()
    // Node joins duplicate Origin headers with ", ", which no origin contains: refused here
    const origin = normaliseOrigin(raw)
    const allowed = origin !== null && (route.origins === null ? sameOrigin(origin, request.headers.host, isTls(request)) : route.origins.includes(origin))
    if (!allowed) return refuse(reply, 403, 'Origin not allowed.')
    done()
  }
}

export function capacityCheck (core: Core): onRequestHookHandler {
  return function checkCapacity (request, reply, done) {
    if (core.closing) return refuse(reply.header('retry-after', '1'), 503, 'Server is shutting down.')
    const room = core.hasRoomFor(request.ip)
    if (room === 'instance') return refuse(reply.header('retry-after', '1'), 503, 'Too many connections.')
    if (room === 'ip') return refuse(reply.header('retry-after', '1'), 429, 'Too many connections from this address.')
    done()
  }
}

function statusOf (err: unknown): number {
  const status = typeof err === 'object' && err !== null ? (err as { statusCode?: unknown }).statusCode : undefined
  return status === 403 ? 403 : 401
}

/**
 * Runs the route's strategies at the upgrade. With the in-band handshake enabled, an
 * upgrade carrying no credential opens unauthenticated (first frame `socket.handshake`);
 * one carrying a credential must pass. Without the handshake, every upgrade must pass.
 */
export function authenticateUpgrade (route: RouteContext): preValidationHookHandler {
  return async function authenticateWsxUpgrade (this: unknown, request: FastifyRequest, reply: FastifyReply) {
    if (route.tokenQueryParam) moveQueryToken(request, route.tokenQueryParam)
    const hasCredential = typeof request.headers.authorization === 'string'
    const strategies = route.upgradeStrategies
    if (route.handshake && !hasCredential) return
    if (strategies.length === 0) {
      if (route.handshakeStrategies.length === 0 || route.handshake) return
      return refuse(reply, 401, 'Authentication required.')
    }
    const outcome = await runStrategies(strategies, route.instance, request, reply)
    if (reply.sent) return reply
    if (!outcome.ok) {
      const message = outcome.error instanceof Error && statusOf(outcome.error) === 401 ? 'Authentication failed.' : 'Forbidden.'
      return refuse(reply, statusOf(outcome.error), message)
    }
    const user = (request as { user?: unknown }).user
    ;(request as unknown as Record<symbol, unknown>)[kUpgradeUser] = user === null || user === undefined ? true : user
  }
}

/** A query token becomes the Bearer header the strategies read, and leaves the query. */
function moveQueryToken (request: FastifyRequest, param: string): void {
  const query = request.query as Record<string, unknown>
  const token = query?.[param]
  if (typeof token !== 'string' || token.length === 0 || request.headers.authorization) return
  request.headers = { ...request.headers, authorization: `Bearer ${token}` }
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
