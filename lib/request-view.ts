// Per-message and per-handshake stand-ins for Fastify's request and reply, so an app's
// ordinary hook functions ((request, reply) => ...) run unchanged over a socket. The
// view inherits the route's Request prototype (decorators such as `jwtVerify` work) but
// holds only what the connection keeps, never the upgrade's IncomingMessage: holding it
// would keep the whole upgrade request alive for the socket's life.
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'

export interface ViewSource {
  /** the route's Request prototype and context symbol value, captured at the first upgrade */
  proto: object
  routeContext: [symbol, unknown] | null
  id: string
  url: string
  ip: string
  headers: IncomingHttpHeaders
  params: unknown
  query: unknown
  log: FastifyBaseLogger
  user: unknown
}

/** Finds the symbol Fastify keeps the route context under, so `request.server` works on views. */
export function captureRouteContext (request: FastifyRequest): [symbol, unknown] | null {
  for (const sym of Object.getOwnPropertySymbols(request)) {
    if (sym.description === 'fastify.context') return [sym, (request as unknown as Record<symbol, unknown>)[sym]]
  }
  return null
}

/**
 * A request view over `src`. `headers` replaces the upgrade headers when given (the
 * handshake passes only `authorization: Bearer <token>`), `body` carries message data.
 */
export function createRequestView (src: ViewSource, opts: { headers?: IncomingHttpHeaders, body?: unknown, query?: unknown } = {}): FastifyRequest {
  const headers = opts.headers ?? src.headers
  const view = Object.create(src.proto) as Record<PropertyKey, unknown>
  const own = (value: unknown) => ({ value, writable: true, configurable: true, enumerable: true })
  Object.defineProperties(view, {
    id: own(src.id),
    params: own(src.params),
    query: own(opts.query ?? src.query),
    body: own(opts.body),
    log: own(src.log),
    headers: own(headers),
    ip: own(src.ip),
    raw: own({ headers, url: src.url, method: 'GET', socket: undefined }),
    cookies: own(opts.headers ? {} : undefined),
    user: own(src.user)
  })
  if (src.routeContext) view[src.routeContext[0]] = src.routeContext[1]
  return view as unknown as FastifyRequest
}

export interface ReplyShim {
  statusCode: number
  sent: boolean
  payload: unknown
}

/**
 * A reply stand-in: `reply.code(403).send(...)` from a hook ends the chain, and the
 * status is mapped to a wire error by the caller.
 */
export function createReplyShim (request: FastifyRequest, log: FastifyBaseLogger): FastifyReply & ReplyShim {
  const shim = {
    statusCode: 200,
    sent: false,
    payload: undefined as unknown,
    request,
    log,
    get server () { return request.server },
    code (n: number) { shim.statusCode = n; return shim },
    status (n: number) { shim.statusCode = n; return shim },
    header () { return shim },
    headers () { return shim },
    type () { return shim },
    getHeader () { return undefined },
    hasHeader () { return false },
    send (payload?: unknown) {
      shim.sent = true
      shim.payload = payload
      if (shim.statusCode < 400) shim.statusCode = 403
      return shim
    }
  }
  return shim as unknown as FastifyReply & ReplyShim
}
