// The conformance matrix (README "Authentication"), with the real plugins from the registry:
// each row protects an HTTP route and a WebSocket route with the *same* function, and
// checks both, at the upgrade and in-band, success and failure. No casts anywhere: the
// plugins' own functions are passed as they are. Session plugins have their own files
// (auth-session.test.ts, auth-secure-session.test.ts): their request types differ.
import t from 'tap'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import fastifyCookie from '@fastify/cookie'
import fastifyAuth from '@fastify/auth'
import fastifyBearerAuth from '@fastify/bearer-auth'
import fastifyBasicAuth from '@fastify/basic-auth'
import { action, type WsxHook } from '../index.js'
import { bareApp, inbandAuthenticates, inbandFails, upgradeAuthenticates, upgradeOpensHandshake, upgradeRefused } from './helpers/auth-matrix.js'

const SECRET = 'matrix-secret-matrix-secret-matrix!'
const whoami = action({ handler: async (_msg, conn) => ({ user: conn.user, via: conn.via }) })

/** The HTTP route and the WebSocket route, both behind `strategy`. */
function protect (app: FastifyInstance, strategy: WsxHook, route: { credentials?: { apiKeyHeader?: string | false, sessionCookie?: string | false } } = {}): void {
  app.get('/api/me', { onRequest: strategy }, async (request) => ({ user: request.user ?? null }))
  app.wsx.route({ url: '/ws', authenticate: [strategy], actions: { 'me.get': whoami }, ...route })
}

async function verifyJwt (request: FastifyRequest): Promise<void> {
  await request.jwtVerify()
}

/** The other common style: catch the failure and reply 401 from an `onRequest` hook. */
async function verifyJwtOrReply (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  try {
    await request.jwtVerify()
  } catch {
    reply.code(401).send({ error: 'token rejected' })
    return reply
  }
}

/** A plain API-key `onRequest` hook, as apps write them. */
async function apiKey (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  if (request.headers['x-api-key'] !== 'key-123') {
    reply.code(401).send({ error: 'bad api key' })
    return reply
  }
  request.user = { sub: 'service-a' }
}

t.test('@fastify/jwt, Authorization header', async (t) => {
  const app = await bareApp(t, async (app) => { await app.register(fastifyJwt, { secret: SECRET }) })
  protect(app, verifyJwt)
  const token = app.jwt.sign({ sub: 'alice' })
  t.equal((await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })).statusCode, 200, 'HTTP: valid token')
  t.equal((await app.inject({ url: '/api/me', headers: { authorization: 'Bearer nope' } })).statusCode, 401, 'HTTP: bad token')
  const c = await upgradeAuthenticates(t, app, '/ws', { authorization: `Bearer ${token}` }, 'valid header')
  t.match(await c.request('me.get'), { ok: true, data: { user: { sub: 'alice' }, via: 'upgrade' } })
  await upgradeRefused(t, app, '/ws', { authorization: 'Bearer nope' }, 401, 'bad header')
  const h = await upgradeOpensHandshake(t, app, '/ws', {}, 'no credential')
  await inbandFails(t, h, { token: 'nope' }, 'bad token')
  await inbandAuthenticates(t, h, { token }, 'valid token')
  t.match(await h.request('me.get'), { ok: true, data: { user: { sub: 'alice' }, via: 'authorize' } })
})

t.test('@fastify/jwt, cookie mode with @fastify/cookie', async (t) => {
  const app = await bareApp(t, async (app) => {
    await app.register(fastifyCookie)
    await app.register(fastifyJwt, { secret: SECRET, cookie: { cookieName: 'token', signed: false } })
  })
  protect(app, verifyJwt)
  const token = app.jwt.sign({ sub: 'bob' })
  t.equal((await app.inject({ url: '/api/me', headers: { cookie: `token=${token}` } })).statusCode, 200, 'HTTP: valid cookie')
  t.equal((await app.inject({ url: '/api/me', headers: { cookie: 'token=nope' } })).statusCode, 401, 'HTTP: bad cookie')
  const c = await upgradeAuthenticates(t, app, '/ws', { cookie: `token=${token}` }, 'valid cookie, default route settings')
  t.match(await c.request('me.get'), { ok: true, data: { user: { sub: 'bob' } } })
  // a cookie is ambient (the browser sends it by itself): an expired one must not lock the page out
  const h = await upgradeOpensHandshake(t, app, '/ws', { cookie: 'token=expired-or-bad' }, 'bad cookie')
  await inbandFails(t, h, { token: 'nope' }, 'bad token')
  await inbandAuthenticates(t, h, { token }, 'a token in-band (as Authorization: Bearer)')
})

t.test('@fastify/jwt, onRequest hook that replies on failure', async (t) => {
  const app = await bareApp(t, async (app) => { await app.register(fastifyJwt, { secret: SECRET }) })
  protect(app, verifyJwtOrReply)
  const token = app.jwt.sign({ sub: 'carol' })
  const http = await app.inject({ url: '/api/me', headers: { authorization: 'Bearer nope' } })
  t.equal(http.statusCode, 401, 'HTTP: the hook\'s 401')
  t.same(http.json(), { error: 'token rejected' })
  await upgradeAuthenticates(t, app, '/ws', { authorization: `Bearer ${token}` }, 'valid header')
  const refusal = await upgradeRefused(t, app, '/ws', { authorization: 'Bearer nope' }, 401, 'bad header: the hook\'s own reply')
  t.match(refusal?.headers['content-type'], /json/)
  const h = await upgradeOpensHandshake(t, app, '/ws', {}, 'no credential')
  await inbandFails(t, h, { token: 'nope' }, 'bad token')
  await inbandAuthenticates(t, h, { token }, 'valid token')
})

t.test('@fastify/auth: app.auth([...]) with the or and the and relation', async (t) => {
  const app = await bareApp(t, async (app) => {
    await app.register(fastifyJwt, { secret: SECRET })
    await app.register(fastifyAuth)
  })
  const isAdmin = async (request: FastifyRequest) => {
    if ((request.user as { role?: string } | undefined)?.role !== 'admin') throw Object.assign(new Error('admins only'), { statusCode: 403 })
  }
  const either = app.auth([verifyJwt, apiKey])
  const both = app.auth([verifyJwt, isAdmin], { relation: 'and' })
  app.get('/api/either', { onRequest: either }, async () => ({ ok: true }))
  app.get('/api/admin', { onRequest: both }, async () => ({ ok: true }))
  app.wsx.route({ url: '/ws/either', authenticate: [either], actions: { 'me.get': whoami } })
  app.wsx.route({ url: '/ws/admin', authenticate: [both], actions: { 'me.get': whoami } })
  const user = app.jwt.sign({ sub: 'dave', role: 'user' })
  const admin = app.jwt.sign({ sub: 'erin', role: 'admin' })

  t.equal((await app.inject({ url: '/api/either', headers: { authorization: `Bearer ${user}` } })).statusCode, 200, 'HTTP or: the JWT')
  t.equal((await app.inject({ url: '/api/either', headers: { 'x-api-key': 'key-123' } })).statusCode, 200, 'HTTP or: the API key')
  t.equal((await app.inject({ url: '/api/either', headers: { 'x-api-key': 'wrong' } })).statusCode, 401, 'HTTP or: neither')
  t.equal((await app.inject({ url: '/api/admin', headers: { authorization: `Bearer ${admin}` } })).statusCode, 200, 'HTTP and: admin')
  t.equal((await app.inject({ url: '/api/admin', headers: { authorization: `Bearer ${user}` } })).statusCode, 403, 'HTTP and: not admin')

  await upgradeAuthenticates(t, app, '/ws/either', { authorization: `Bearer ${user}` }, 'or: the JWT')
  const k = await upgradeAuthenticates(t, app, '/ws/either', { 'x-api-key': 'key-123' }, 'or: the API key')
  t.match(await k.request('me.get'), { ok: true, data: { user: { sub: 'service-a' } } })
  await upgradeRefused(t, app, '/ws/either', { 'x-api-key': 'wrong' }, 401, 'or: a wrong API key')
  await upgradeAuthenticates(t, app, '/ws/admin', { authorization: `Bearer ${admin}` }, 'and: admin')
  await upgradeRefused(t, app, '/ws/admin', { authorization: `Bearer ${user}` }, 403, 'and: not admin')

  const h = await upgradeOpensHandshake(t, app, '/ws/either', {}, 'or: no credential')
  await inbandFails(t, h, { api_key: 'wrong' }, 'or: a wrong API key')
  await inbandAuthenticates(t, h, { api_key: 'key-123' }, 'or: the API key (as X-API-Key)')
  const a = await upgradeOpensHandshake(t, app, '/ws/admin', {}, 'and: no credential')
  await inbandFails(t, a, { token: user }, 'and: not admin')
  await inbandAuthenticates(t, a, { token: admin }, 'and: admin')
})

t.test('@fastify/bearer-auth (addHook: false, app.verifyBearerAuth)', async (t) => {
  const app = await bareApp(t, async (app) => { await app.register(fastifyBearerAuth, { keys: new Set(['bearer-key-1']), addHook: false, verifyErrorLogLevel: 'debug' }) })
  protect(app, app.verifyBearerAuth!)
  t.equal((await app.inject({ url: '/api/me', headers: { authorization: 'Bearer bearer-key-1' } })).statusCode, 200, 'HTTP: valid key')
  t.equal((await app.inject({ url: '/api/me', headers: { authorization: 'Bearer nope' } })).statusCode, 401, 'HTTP: bad key')
  await upgradeAuthenticates(t, app, '/ws', { authorization: 'Bearer bearer-key-1' }, 'valid key')
  await upgradeRefused(t, app, '/ws', { authorization: 'Bearer nope' }, 401, 'bad key')
  const h = await upgradeOpensHandshake(t, app, '/ws', {}, 'no credential')
  await inbandFails(t, h, { token: 'nope' }, 'bad key')
  await inbandAuthenticates(t, h, { token: 'bearer-key-1' }, 'valid key')
})

t.test('@fastify/basic-auth (app.basicAuth)', async (t) => {
  const app = await bareApp(t, async (app) => {
    await app.register(fastifyBasicAuth, {
      authenticate: { realm: 'wsx' },
      validate: async (username, password, request) => {
        if (username !== 'frank' || password !== 's3cret:pw') throw new Error('bad credentials')
        request.user = { sub: username }
      }
    })
  })
  protect(app, app.basicAuth)
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`
  t.equal((await app.inject({ url: '/api/me', headers: { authorization: basic('frank', 's3cret:pw') } })).statusCode, 200, 'HTTP: valid')
  const bad = await app.inject({ url: '/api/me', headers: { authorization: basic('frank', 'x') } })
  t.equal(bad.statusCode, 401, 'HTTP: bad password')
  const c = await upgradeAuthenticates(t, app, '/ws', { authorization: basic('frank', 's3cret:pw') }, 'valid')
  t.match(await c.request('me.get'), { ok: true, data: { user: { sub: 'frank' } } })
  const refusal = await upgradeRefused(t, app, '/ws', { authorization: basic('frank', 'x') }, 401, 'bad password')
  t.equal(refusal?.headers['www-authenticate'], bad.headers['www-authenticate'], 'the same WWW-Authenticate challenge as HTTP')
  const h = await upgradeOpensHandshake(t, app, '/ws', {}, 'no credential')
  await inbandFails(t, h, { username: 'frank', password: 'x' }, 'bad password')
  await inbandAuthenticates(t, h, { username: 'frank', password: 's3cret:pw' }, 'username and password (as Authorization: Basic)')
})

t.test('a plain API-key onRequest hook', async (t) => {
  const app = await bareApp(t, async () => {})
  protect(app, apiKey)
  t.equal((await app.inject({ url: '/api/me', headers: { 'x-api-key': 'key-123' } })).statusCode, 200, 'HTTP: valid key')
  t.equal((await app.inject({ url: '/api/me', headers: { 'x-api-key': 'nope' } })).statusCode, 401, 'HTTP: bad key')
  const c = await upgradeAuthenticates(t, app, '/ws', { 'x-api-key': 'key-123' }, 'valid key, default route settings')
  t.match(await c.request('me.get'), { ok: true, data: { user: { sub: 'service-a' } } })
  const refusal = await upgradeRefused(t, app, '/ws', { 'x-api-key': 'nope' }, 401, 'bad key: an explicit credential, so 401')
  t.ok(refusal)
  const h = await upgradeOpensHandshake(t, app, '/ws', {}, 'no key')
  await inbandFails(t, h, { api_key: 'nope' }, 'bad key')
  await inbandAuthenticates(t, h, { api_key: 'key-123' }, 'valid key (as X-API-Key)')
})

t.test('a scope-level onRequest guard (tenant header) guards the WebSocket route like the HTTP ones', async (t) => {
  const app = await bareApp(t, async (app) => { await app.register(fastifyJwt, { secret: SECRET }) })
  let guardRuns = 0
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      guardRuns++
      if (request.headers['x-tenant'] !== 'acme') return reply.code(403).send({ error: 'unknown tenant' })
    })
    protect(scope, verifyJwt)
  }, { prefix: '/t' })
  const token = app.jwt.sign({ sub: 'gina' })
  t.equal((await app.inject({ url: '/t/api/me', headers: { authorization: `Bearer ${token}` } })).statusCode, 403, 'HTTP: no tenant')
  t.equal((await app.inject({ url: '/t/api/me', headers: { authorization: `Bearer ${token}`, 'x-tenant': 'acme' } })).statusCode, 200, 'HTTP: tenant')
  await upgradeRefused(t, app, '/t/ws', { authorization: `Bearer ${token}` }, 403, 'no tenant, even with a valid token')
  await upgradeRefused(t, app, '/t/ws', {}, 403, 'no tenant, no token')
  await upgradeAuthenticates(t, app, '/t/ws', { authorization: `Bearer ${token}`, 'x-tenant': 'acme' }, 'tenant and token')
  const h = await upgradeOpensHandshake(t, app, '/t/ws', { 'x-tenant': 'acme' }, 'tenant, no token')
  const before = guardRuns
  await inbandFails(t, h, { token: 'nope' }, 'bad token')
  await inbandAuthenticates(t, h, { token }, 'valid token')
  t.equal(guardRuns - before, 2, 'in-band, the guard ran again on each attempt (with the upgrade\'s tenant header)')
})
