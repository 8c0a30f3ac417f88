// lib/fastify/internals.ts: each framework detail fastify-wsx relies on is checked at boot
// against the real Fastify, ws and node:http, and each check reports an object that lacks
// the shape. Socket errors reach @fastify/websocket's `errorHandler` option.
import t from 'tap'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { EventEmitter } from 'node:events'
import type { WebSocket } from 'ws'
import wsx, { action } from '../index.js'
import { connect } from '../testing/index.js'
import {
  assertFrameworkShapes, captureRouteContext, checkHttpMessageLink, checkNoOwnErrorListener,
  checkRouteContext, checkTcpSocketField
} from '../lib/fastify/internals.js'
import { errors } from '../lib/errors.js'

t.test('the boot check passes on the installed Fastify, ws and node:http', async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  t.doesNotThrow(() => assertFrameworkShapes(app))
  // a child scope (its own Request constructor, inherited symbols) passes too
  await app.register(async (scope) => { t.doesNotThrow(() => assertFrameworkShapes(scope)) })
  await app.register(wsx)
  await app.ready()
})

t.test('the route-context check reports a request without the fastify.context symbol', async (t) => {
  const context = { server: {} }
  t.match(checkRouteContext({}, context), /no own symbol "fastify.context"/)
  const other = { [Symbol('fastify.context')]: { server: {} } }
  t.match(checkRouteContext(other, context), /does not hold its route context/)
  const kContext = Symbol('fastify.context')
  const noGetter = { [kContext]: context }
  t.match(checkRouteContext(noGetter, context), /request.server is not read/)
  const good = { [kContext]: context, get server () { return this[kContext].server } }
  t.equal(checkRouteContext(good, context), null)
  t.same(captureRouteContext(good), [kContext, context])
  t.equal(captureRouteContext({}), null)
})

t.test('the upgrade-response checks report a WebSocket without _socket and a response that does not link', async (t) => {
  t.match(checkTcpSocketField({}), /no "_socket" field/)
  t.equal(checkTcpSocketField({ _socket: null }), null)
  t.match(checkHttpMessageLink({}, {}), /no assignSocket\/detachSocket/)
  const silent = { assignSocket () {}, detachSocket () {} }
  t.match(checkHttpMessageLink(silent, {}), /does not point to its response/)
  const sticky = {
    assignSocket (s: { _httpMessage?: unknown }) { s._httpMessage = sticky },
    detachSocket () {}
  }
  t.match(checkHttpMessageLink(sticky, {}), /does not clear/)
})

t.test('the error-listener check reports a WebSocket that listens for errors itself', async (t) => {
  const emitter = new EventEmitter()
  t.equal(checkNoOwnErrorListener(emitter), null)
  emitter.on('error', () => {})
  t.match(checkNoOwnErrorListener(emitter), /already listens/)
})

t.test('a changed shape fails the boot with WSX_ERR_FRAMEWORK_CHANGED', async (t) => {
  // an instance whose Request constructor cannot be found: the check cannot vouch for requests
  const fake = { log: Fastify({ logger: false }).log } as unknown as FastifyInstance
  t.throws(() => assertFrameworkShapes(fake), { code: 'WSX_ERR_FRAMEWORK_CHANGED', message: /fastify.*"fastify.Request"/ })
  t.match(new errors.WSX_ERR_FRAMEWORK_CHANGED('ws', 'x').message, /relies on a detail of ws .*: x/)
})

interface ErrorCall { self: unknown, error: Error, socket: WebSocket, url: string, user: unknown, reply: FastifyReply }

t.test("socket errors reach the app's websocket.errorHandler, on envelope and low-level routes", async (t) => {
  const calls: ErrorCall[] = []
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(wsx, {
    heartbeatMs: 0,
    maxPayload: 1024,
    websocket: {
      errorHandler (this: FastifyInstance, error: Error, socket: WebSocket, request: FastifyRequest, reply: FastifyReply) {
        calls.push({ self: this, error, socket, url: request.url, user: (request as { user?: unknown }).user, reply })
        socket.terminate()
      }
    }
  })
  let scoped: FastifyInstance | null = null
  await app.register(async (scope) => {
    scoped = scope
    scope.wsx.route({ url: '/ws', actions: { 'public.ping': action({ public: true, handler: async () => ({ pong: true }) }) } })
    scope.wsx.socket('/raw', async (socket) => { for await (const m of socket) socket.sendText(String(m.data)) })
  })

  const c = await connect(app, '/ws?x=1')
  await c.next('socket.authorized')
  t.match(await c.request('public.ping'), { ok: true })
  c.sendRaw('x'.repeat(2048))
  await c.closed()
  t.equal(calls.length, 1, 'called once for the oversized frame')
  const call = calls[0]!
  t.equal(call.error.message, 'Max payload size exceeded')
  t.equal(call.self, scoped, 'this is the route\'s instance, as @fastify/websocket calls it')
  t.equal(call.url, '/ws?x=1', 'the request is the connection\'s view of the upgrade')
  t.equal(call.user, null)
  t.equal(typeof call.reply.code, 'function', 'a reply stand-in')
  t.equal(app.wsx.connections.size, 0)

  const raw = await connect(app, '/raw')
  raw.sendRaw('y'.repeat(2048))
  await raw.closed()
  t.equal(calls.length, 2, 'the low-level route keeps @fastify/websocket\'s own listener, which calls it too')
  t.equal(calls[1]!.error.message, 'Max payload size exceeded')
})

t.test('without an errorHandler a socket error is a debug line; one that throws is logged', async (t) => {
  const lines: Array<{ level: number, msg: string }> = []
  const stream = { write (line: string) { lines.push(JSON.parse(line)) } }
  const app = Fastify({ logger: { level: 'debug', stream } })
  t.teardown(() => app.close())
  await app.register(wsx, {
    heartbeatMs: 0,
    maxPayload: 1024,
    websocket: { errorHandler () { throw new Error('handler bug') } }
  })
  app.wsx.route({ url: '/ws', actions: { 'public.ping': action({ public: true, handler: async () => ({}) }) } })
  const c = await connect(app, '/ws')
  await c.next('socket.authorized')
  c.sendRaw('x'.repeat(2048))
  t.equal((await c.closed()).code, 1009, 'ws still closes the socket')
  t.ok(lines.some((l) => l.level === 50 && l.msg === 'wsx: the websocket errorHandler threw'))

  const quiet: Array<{ level: number, msg: string }> = []
  const plain = Fastify({ logger: { level: 'debug', stream: { write (line: string) { quiet.push(JSON.parse(line)) } } } })
  t.teardown(() => plain.close())
  await plain.register(wsx, { heartbeatMs: 0, maxPayload: 1024 })
  plain.wsx.route({ url: '/ws', actions: { 'public.ping': action({ public: true, handler: async () => ({}) }) } })
  const d = await connect(plain, '/ws')
  await d.next('socket.authorized')
  d.sendRaw('x'.repeat(2048))
  t.equal((await d.closed()).code, 1009)
  t.ok(quiet.some((l) => l.level === 20 && l.msg === 'wsx socket error'))
  t.notOk(quiet.some((l) => l.level >= 50), 'nothing logged as an error')
})
