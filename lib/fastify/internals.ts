// Every use of a Fastify, ws, @fastify/websocket or node:http detail that is not public
// API lives here, and nowhere else. Each comes with a check that `assertFrameworkShapes()`
// runs once when the plugin registers: a dependency upgrade that changes one of these
// shapes fails the boot with WSX_ERR_FRAMEWORK_CHANGED, instead of quietly breaking
// request views or keeping every upgrade request alive at traffic.
//
// The checks take the objects they inspect as arguments, so a test can hand them an
// object without the shape and see the problem reported.
import type { EventEmitter } from 'node:events'
import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { errors } from '../errors.js'

// --- Fastify: the route context a request carries -------------------------------------

/** Fastify keeps a request's route context under `Symbol('fastify.context')`. */
const ROUTE_CONTEXT = 'fastify.context'
/** ...and each instance's Request constructor under `Symbol('fastify.Request')` (used by the boot check only). */
const REQUEST_CONSTRUCTOR = 'fastify.Request'

/**
 * The symbol Fastify keeps a request's route context under, with its value. Request views
 * carry it so that `request.server`, `routeOptions` and the schema helpers work on them.
 * Found by description, not imported: an app may load its own copy of Fastify, whose
 * symbol is a different one with the same description.
 */
export function captureRouteContext (request: object): [symbol, unknown] | null {
  for (const sym of Object.getOwnPropertySymbols(request)) {
    if (sym.description === ROUTE_CONTEXT) return [sym, (request as Record<symbol, unknown>)[sym]]
  }
  return null
}

/**
 * What is wrong with `request` as a carrier of `context` (null: nothing): it must hold it
 * under the `fastify.context` symbol, and its `server` getter must read it from there.
 */
export function checkRouteContext (request: object, context: { server: unknown }): string | null {
  const captured = captureRouteContext(request)
  if (captured === null) return `a request has no own symbol "${ROUTE_CONTEXT}"`
  if (captured[1] !== context) return `the "${ROUTE_CONTEXT}" symbol of a request does not hold its route context`
  if ((request as { server?: unknown }).server !== context.server) return `request.server is not read from the "${ROUTE_CONTEXT}" symbol`
  return null
}

/** The value under a symbol of `description` on `target` or its prototypes (child instances inherit). */
function symbolValue (target: object, description: string): unknown {
  for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    const sym = Object.getOwnPropertySymbols(o).find((s) => s.description === description)
    if (sym !== undefined) return (o as Record<symbol, unknown>)[sym]
  }
  return undefined
}

/** A request built by the instance's own Request constructor, carrying a stand-in context. */
function probeRequest (fastify: FastifyInstance): { request: object, context: { server: unknown } } | string {
  const Request = symbolValue(fastify, REQUEST_CONSTRUCTOR)
  if (typeof Request !== 'function') return `a Fastify instance has no "${REQUEST_CONSTRUCTOR}" constructor to check requests with`
  const context = { server: fastify }
  const raw = { headers: {}, url: '/', method: 'GET' }
  const request = new (Request as new (...args: unknown[]) => object)('fastify-wsx-probe', {}, raw, {}, fastify.log, context)
  return { request, context }
}

// --- ws + node:http: the upgrade's response, still attached to the TCP socket -----------

interface WithTcpSocket { _socket?: { _httpMessage?: { detachSocket?: (socket: unknown) => void } | null } | null }

/**
 * @fastify/websocket runs the upgrade through Fastify with a ServerResponse assigned to
 * the TCP socket; nothing ever ends it, so the socket would keep that response, the
 * upgrade request and Fastify's request/reply alive for its whole life (about 1 KB per
 * idle connection). Detaching it, as Node does when a response ends, lets them go.
 */
export function releaseUpgradeResponse (socket: WebSocket): void {
  const tcp = (socket as unknown as WithTcpSocket)._socket
  const response = tcp?._httpMessage
  if (response && typeof response.detachSocket === 'function') response.detachSocket(tcp)
}

/** What is wrong with `ws` as a ws WebSocket for `releaseUpgradeResponse` (null: nothing). */
export function checkTcpSocketField (ws: object): string | null {
  return Object.hasOwn(ws, '_socket') ? null : 'a ws WebSocket has no "_socket" field'
}

/**
 * What is wrong with node:http's response ↔ socket link (null: nothing): assigning
 * `response` to `socket` must set `socket._httpMessage`, and `detachSocket` clear it.
 */
export function checkHttpMessageLink (response: object, socket: object): string | null {
  const res = response as { assignSocket?: (s: unknown) => void, detachSocket?: (s: unknown) => void }
  if (typeof res.assignSocket !== 'function' || typeof res.detachSocket !== 'function') return 'a ServerResponse has no assignSocket/detachSocket'
  res.assignSocket(socket)
  if ((socket as { _httpMessage?: unknown })._httpMessage !== response) return 'an assigned socket does not point to its response as "_httpMessage"'
  res.detachSocket(socket)
  if ((socket as { _httpMessage?: unknown })._httpMessage !== null) return 'detachSocket does not clear the socket\'s "_httpMessage"'
  return null
}

// --- @fastify/websocket: the socket's error listener -------------------------------------

/**
 * Replaces the socket's `error` listeners with `listener`. When the route handler runs,
 * the only one is @fastify/websocket's (ws adds none on the WebSocket itself), which
 * forwards to its `errorHandler` option but closes over the upgrade's request and reply,
 * keeping both alive for the socket's life. `listener` must call that `errorHandler`
 * itself (lib/connection/connection.ts does), so the option keeps working.
 */
export function replaceSocketErrorListener (socket: WebSocket, listener: (this: WebSocket, err: Error) => void): void {
  socket.removeAllListeners('error')
  socket.on('error', listener)
}

/** What is wrong with `ws` for `replaceSocketErrorListener` (null: nothing): ws itself must not listen. */
export function checkNoOwnErrorListener (ws: EventEmitter): string | null {
  return ws.listenerCount('error') === 0 ? null : 'a new ws WebSocket already listens for "error" itself'
}

// --- the boot check ------------------------------------------------------------------------

/**
 * Runs every check against the real Fastify instance, a real ws WebSocket and real
 * node:http objects. Throws WSX_ERR_FRAMEWORK_CHANGED naming the first shape that is gone.
 */
export function assertFrameworkShapes (fastify: FastifyInstance): void {
  const probe = probeRequest(fastify)
  // `address: null` is the server-side form (what ws's WebSocketServer builds); its types omit it
  const ws = new (WebSocket as unknown as new (address: null, protocols: undefined, options: object) => WebSocket)(null, undefined, {})
  const socket = new Socket()
  const problems = [
    ['fastify', typeof probe === 'string' ? probe : checkRouteContext(probe.request, probe.context)],
    ['ws', checkTcpSocketField(ws)],
    ['ws', checkNoOwnErrorListener(ws)],
    ['node:http', checkHttpMessageLink(new ServerResponse(new IncomingMessage(socket)), socket)]
  ] as const
  socket.destroy()
  for (const [module, problem] of problems) {
    if (problem !== null) throw new errors.WSX_ERR_FRAMEWORK_CHANGED(module, problem)
  }
}
