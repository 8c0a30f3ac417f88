// Wrong options fail at boot with coded errors (app.ready() rejects), never at traffic.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import wsx, { action, Type } from '../index.js'
import { connect } from '../testing/index.js'
import { SECRET, verifyJwt } from './helpers/build.js'
import type { RouteOptions, WsxPluginOptions } from '../types/options.js'

async function bare (t: Test, opts: WsxPluginOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(fastifyJwt, { secret: SECRET })
  app.register(wsx, opts)
  return app
}

const ok = action({ handler: async () => ({}) })

/** Declares one route in a scope; ready() must reject with `code`. */
async function rejectsRoute (t: Test, route: unknown, code: string, message: RegExp | undefined, name: string): Promise<void> {
  const app = await bare(t)
  app.register(async (scope) => { scope.wsx.route(route as RouteOptions) })
  const err = await app.ready().then(() => null, (e: unknown) => e as Error & { code: string })
  t.ok(err, `${name}: ready() rejects`)
  t.equal(err?.code, code, `${name}: ${code}`)
  if (message) t.match(err?.message, message, `${name}: says what is wrong`)
  // never at traffic: the app cannot be started anyway (ready() alone never listens, so
  // asking `listening` after it proved nothing)
  await t.rejects(app.listen({ port: 0, host: '127.0.0.1' }), { code }, `${name}: listen() refuses too`)
  t.notOk(app.server.listening, `${name}: no port was opened`)
}

t.test('bad action names', async (t) => {
  for (const name of ['chat..send', '.chat', 'chat.', 'chat send', 'chat/send', 'chat-send', 'émoji', '', 'a'.repeat(129)]) {
    await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], actions: { [name]: ok } }, 'WSX_ERR_ACTION_NAME', undefined, `name "${name.slice(0, 20)}"`)
  }
})

t.test('reserved built-in names', async (t) => {
  for (const name of ['socket.ping', 'socket.authorize', 'channel.subscribe', 'channel.unsubscribe']) {
    await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], actions: { [name]: ok } }, 'WSX_ERR_ACTION_RESERVED', new RegExp(name.replace('.', '\\.')), name)
  }
})

t.test('schemas that are not TypeBox', async (t) => {
  const plain = { type: 'object', properties: { text: { type: 'string' } } }
  await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], actions: { 'chat.send': { request: plain, handler: ok.handler } } }, 'WSX_ERR_SCHEMA_NOT_TYPEBOX', /request schema of "chat\.send"/, 'request')
  await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], actions: { 'chat.send': { response: plain, handler: ok.handler } } }, 'WSX_ERR_SCHEMA_NOT_TYPEBOX', /response/, 'response')
  await rejectsRoute(t, { url: '/ws/:room', authenticate: [verifyJwt], schema: { params: plain }, actions: { a: ok } }, 'WSX_ERR_SCHEMA_NOT_TYPEBOX', /params/, 'params')
  await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], schema: { querystring: plain }, actions: { a: ok } }, 'WSX_ERR_SCHEMA_NOT_TYPEBOX', /querystring/, 'querystring')
  await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], events: { 'chat.message': plain }, actions: { a: ok } }, 'WSX_ERR_SCHEMA_NOT_TYPEBOX', /chat\.message/, 'event')
})

t.test('unknown options and invalid actions', async (t) => {
  await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], actions: { a: ok }, authentication: [verifyJwt] }, 'WSX_ERR_ROUTE_UNKNOWN_OPTION', /"authentication"/, 'a misspelt route option')
  await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], actions: { a: { handler: ok.handler, permission: [] } } }, 'WSX_ERR_ACTION_INVALID', /unknown option "permission"/, 'a misspelt action option')
  await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], actions: { a: { request: Type.Object({}) } } }, 'WSX_ERR_ACTION_INVALID', /handler/, 'no handler')
  await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], actions: { a: { handler: ok.handler, permissions: ['admin'] } } }, 'WSX_ERR_ACTION_INVALID', /functions/, 'a permission that is not a function')
  await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], actions: { a: { handler: ok.handler, throttle: { max: 0 } } } }, 'WSX_ERR_OPTS_INVALID', /max/, 'a throttle of 0')
  await rejectsRoute(t, { url: '/ws', authenticate: ['verifyJwt'], actions: { a: ok } }, 'WSX_ERR_ROUTE_INVALID', /authenticate/, 'a strategy that is not a function')
  await rejectsRoute(t, { url: 'ws', authenticate: [verifyJwt], actions: { a: ok } }, 'WSX_ERR_ROUTE_INVALID', /url/, 'a url without a leading slash')
  await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt] }, 'WSX_ERR_ROUTE_INVALID', /actions/, 'no actions')
  await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], actions: { a: ok }, handshake: { attempt: 3 } }, 'WSX_ERR_OPTS_INVALID', /attempt/, 'a misspelt handshake option')
  await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], actions: { a: ok }, origins: ['localhost:3000'] }, 'WSX_ERR_OPTS_INVALID', /not an origin/, 'an origin without a scheme')
  await rejectsRoute(t, { url: '/ws', authenticate: [verifyJwt], actions: { a: ok }, tokenQueryParam: 'to ken' }, 'WSX_ERR_ROUTE_INVALID', /tokenQueryParam/, 'a bad tokenQueryParam')
})

t.test('protected actions without a strategy', async (t) => {
  await rejectsRoute(t, { url: '/ws', actions: { 'chat.send': ok } }, 'WSX_ERR_ROUTE_NO_AUTH', /protected actions/, 'no authenticate')
  await rejectsRoute(t, { url: '/ws', authenticate: [], actions: { 'public.ping': action({ public: true, handler: async () => ({}) }), 'chat.send': ok } }, 'WSX_ERR_ROUTE_NO_AUTH', undefined, 'an empty list')
  // a route whose actions are all public needs none
  const app = await bare(t)
  app.register(async (scope) => { scope.wsx.route({ url: '/ws', actions: { 'public.ping': action({ public: true, handler: async () => ({}) }) } }) })
  await app.ready()
  t.pass('a public-only route without authenticate boots')
})

t.test('duplicate actions: an object cannot hold the same key twice, the name is the key', async (t) => {
  // Two entries with one name become one key before the plugin sees them: the route boots
  // with a single action, the last one declared (nothing is left to refuse as a duplicate).
  const actions = Object.fromEntries([
    ['x.which', action({ public: true, handler: async () => ({ declared: 'first' }) })],
    ['x.which', action({ public: true, handler: async () => ({ declared: 'last' }) })]
  ])
  const app = await bare(t)
  app.register(async (scope) => { scope.wsx.route({ url: '/ws', actions }) })
  await app.ready()
  const c = await connect(app, '/ws')
  t.teardown(() => c.close())
  t.match(await c.request('x.which'), { ok: true, data: { declared: 'last' } }, 'the last declaration answers')
})

t.test('unknown or invalid plugin options', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['unknown key', { maxPayLoad: 10 }, /"maxPayLoad" is not an option/],
    ['maxPayload 0', { maxPayload: 0 }, /maxPayload/],
    ['maxInflight a string', { maxInflight: '2' }, /maxInflight/],
    ['heartbeatMs negative', { heartbeatMs: -1 }, /heartbeatMs/],
    ['handshake attempts 0', { handshake: { attempts: 0 } }, /attempts/],
    ['origins a string', { origins: 'http://localhost:3000' }, /origins/],
    ['namespace with a slash', { namespace: 'a/b' }, /namespace/],
    ['messageRateLimit without max', { messageRateLimit: { timeWindow: 1000 } }, /max/]
  ]
  for (const [name, opts, message] of cases) {
    const app = Fastify({ logger: false })
    t.teardown(() => app.close())
    app.register(wsx, opts as WsxPluginOptions)
    const err = await app.ready().then(() => null, (e: unknown) => e as Error & { code: string })
    t.equal(err?.code, 'WSX_ERR_OPTS_INVALID', name)
    t.match(err?.message, message, `${name}: says which option`)
  }
})
