// Stand-ins for Fastify's request and reply, so an app's ordinary hook functions
// ((request, reply) => ..., or with `done`) run unchanged per message and at the upgrade.
//
// The request view inherits the route's own Request prototype, so everything Fastify and
// the app's plugins put there works: decorators (`jwtVerify`, `unsignCookie`), `url`,
// `method`, `hostname`, `routeOptions`, `server`. It holds only what the connection keeps
// (the upgrade's headers, URL, params, query, cookies and session), never the upgrade's
// IncomingMessage: holding it would keep the whole upgrade request alive for the socket's life.
//
// The reply shim inherits the route's Reply prototype for the same reason (reply
// decorators), and overrides everything that would touch a real response: what a hook
// "sends" is captured, so the caller can map it to a wire error or replay it over HTTP.
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

export interface ViewSource {
  /** the route's Request prototype and context symbol value, captured at the first upgrade */
  proto: object
  routeContext: [symbol, unknown] | null
  id: string
  /** the URL the upgrade was made to (path and query; a query token removed) */
  url: string
  ip: string
  headers: IncomingHttpHeaders
  params: unknown
  query: unknown
  log: FastifyBaseLogger
  user: unknown
  /** `request.cookies` of the upgrade; undefined when @fastify/cookie is not registered */
  cookies?: unknown
  /** `request.session` of the upgrade, when a session plugin set one */
  session?: unknown
}

function noop (): void {}

/**
 * What `request.raw` is on a view: enough of an IncomingMessage for plugins that read
 * `raw.headers`, `raw.url` or `raw.method`, or listen for `close` (there is no stream).
 */
class RawRequestStandIn {
  readonly headers: IncomingHttpHeaders
  readonly url: string
  readonly method = 'GET'
  readonly httpVersion = '1.1'
  readonly socket = undefined
  constructor (headers: IncomingHttpHeaders, url: string) {
    this.headers = headers
    this.url = url
  }
}
for (const name of ['on', 'once', 'off', 'removeListener', 'addListener', 'prependListener']) {
  Object.defineProperty(RawRequestStandIn.prototype, name, { value: function (this: unknown) { return this } })
}
Object.defineProperty(RawRequestStandIn.prototype, 'emit', { value: () => false })

export interface ViewOptions {
  /** replaces the upgrade headers (a handshake-only strategy sees only the token) */
  headers?: IncomingHttpHeaders
  body?: unknown
  query?: unknown
  cookies?: unknown
}

const own = (value: unknown): PropertyDescriptor => ({ value, writable: true, configurable: true, enumerable: true })

/** A request view over `src`; `body` carries message data. */
export function createRequestView (src: ViewSource, opts: ViewOptions = {}): FastifyRequest {
  const headers = opts.headers ?? src.headers
  const view = Object.create(src.proto) as Record<PropertyKey, unknown>
  const props: PropertyDescriptorMap = {
    id: own(src.id),
    params: own(src.params),
    query: own(opts.query ?? src.query),
    body: own(opts.body),
    log: own(src.log),
    headers: own(headers),
    ip: own(src.ip),
    raw: own(new RawRequestStandIn(headers, src.url)),
    cookies: own(opts.cookies !== undefined ? opts.cookies : src.cookies),
    user: own(src.user)
  }
  if (src.session !== undefined) props.session = own(src.session)
  Object.defineProperties(view, props)
  if (src.routeContext) view[src.routeContext[0]] = src.routeContext[1]
  return view as unknown as FastifyRequest
}

/** A view for a handshake-only strategy: the token alone, no headers, query or cookies of the upgrade. */
export function tokenOnlyView (request: FastifyRequest, authorization: string | undefined): FastifyRequest {
  const headers: IncomingHttpHeaders = authorization === undefined ? {} : { authorization }
  const view = Object.create(request) as Record<PropertyKey, unknown>
  Object.defineProperties(view, {
    headers: own(headers),
    query: own({}),
    cookies: own({}),
    raw: own(new RawRequestStandIn(headers, request.url)),
    user: own(null)
  })
  return view as unknown as FastifyRequest
}

export interface ReplyShim {
  statusCode: number
  sent: boolean
  /** what the hook sent */
  payload: unknown
  /** headers the hook set, lower-case names */
  capturedHeaders: () => OutgoingHttpHeaders
}

const kWatch = Symbol('fastify-wsx.replyWatch')

/** Calls `fn` once the shim is sent (a callback hook may reply without calling done). */
export function watchReply (reply: FastifyReply, fn: () => void): void {
  const holder = reply as unknown as Record<symbol, unknown>
  if (kWatch in holder) holder[kWatch] = fn
}

/**
 * A reply stand-in. `reply.code(401).send(...)`, `reply.raw.writeHead(401); reply.raw.end()`,
 * `reply.hijack()` and a `done(err)` after `reply.code(401)` all end the hook with a status
 * the caller maps. A `send` with a status below 400 counts as a refusal (403).
 */
export function createReplyShim (request: FastifyRequest, log: FastifyBaseLogger, proto?: object): FastifyReply & ReplyShim {
  const headers: OutgoingHttpHeaders = {}
  let statusCode = 200
  let sent = false
  let payload: unknown
  const shim = Object.create(proto ?? Object.prototype) as Record<PropertyKey, unknown>

  const finish = (body: unknown) => {
    if (sent) {
      log.warn('wsx: a hook replied twice; the second reply is ignored')
      return
    }
    sent = true
    payload = body
    if (statusCode < 400) statusCode = 403
    const watcher = shim[kWatch]
    if (typeof watcher === 'function') watcher()
  }
  const setHeader = (name: string, value: unknown) => { headers[String(name).toLowerCase()] = value as string }

  const raw = {
    get statusCode () { return statusCode },
    set statusCode (n: number) { statusCode = n },
    statusMessage: '',
    get headersSent () { return sent },
    get writableEnded () { return sent },
    get finished () { return sent },
    socket: null,
    setHeader (name: string, value: unknown) { setHeader(name, value); return raw },
    getHeader (name: string) { return headers[String(name).toLowerCase()] },
    getHeaders () { return { ...headers } },
    hasHeader (name: string) { return String(name).toLowerCase() in headers },
    removeHeader (name: string) { delete headers[String(name).toLowerCase()] },
    writeHead (code: number, ...rest: unknown[]) {
      statusCode = code
      const h = rest.find((r) => typeof r === 'object' && r !== null) as Record<string, unknown> | undefined
      for (const [k, v] of Object.entries(h ?? {})) setHeader(k, v)
      return raw
    },
    flushHeaders: noop,
    write () { return true },
    end (body?: unknown) { finish(typeof body === 'function' ? undefined : body); return raw },
    on () { return raw },
    once () { return raw },
    off () { return raw },
    removeListener () { return raw },
    emit () { return false }
  }

  Object.defineProperties(shim, {
    [kWatch]: own(null),
    request: own(request),
    log: own(log),
    raw: own(raw),
    // not a thenable: `return reply` from an async hook must not make us await a response
    then: own(undefined),
    elapsedTime: own(0),
    statusCode: { get: () => statusCode, set: (n: number) => { statusCode = n }, configurable: true, enumerable: true },
    sent: { get: () => sent, configurable: true, enumerable: true },
    payload: { get: () => payload, configurable: true, enumerable: true },
    server: { get: () => request.server, configurable: true },
    capturedHeaders: own(() => ({ ...headers })),
    code: own((n: number) => { statusCode = n; return shim }),
    status: own((n: number) => { statusCode = n; return shim }),
    header: own((name: string, value: unknown = '') => { setHeader(name, value); return shim }),
    headers: own((map: Record<string, unknown>) => { for (const [k, v] of Object.entries(map ?? {})) setHeader(k, v); return shim }),
    getHeader: own((name: string) => headers[String(name).toLowerCase()]),
    getHeaders: own(() => ({ ...headers })),
    hasHeader: own((name: string) => String(name).toLowerCase() in headers),
    removeHeader: own((name: string) => { delete headers[String(name).toLowerCase()]; return shim }),
    type: own((value: string) => { setHeader('content-type', value); return shim }),
    serialize: own((value: unknown) => JSON.stringify(value)),
    send: own((body?: unknown) => { finish(body); return shim }),
    hijack: own(() => { finish(undefined); return shim }),
    redirect: own((url: string, code?: number) => { statusCode = code ?? 302; setHeader('location', url); finish(undefined); return shim }),
    callNotFound: own(() => { statusCode = 404; finish(undefined); return shim })
  })
  return shim as unknown as FastifyReply & ReplyShim
}
