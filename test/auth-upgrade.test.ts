// The upgrade decision table and the lock (README "Authentication"), over real sockets:
// strategies run on every upgrade; an ambient credential (a cookie) that fails falls back
// to the in-band handshake; an explicit one answers 401; failures at the upgrade and
// in-band share one per-address count that no success clears; a locked address gets 429 +
// Retry-After for credentials at the upgrade, `locked` in-band, and a `socket.handshake`
// that says so.
import t, { type Test } from 'tap'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import { build, tokenFor } from './helpers/build.js'
import { fakeClock } from './helpers/fake-clock.js'
import { WebSocket } from 'ws'
import { connect, baseUrl, UpgradeRefusedError, type TestClient } from '../testing/index.js'
import { createClient } from '../client/index.js'
import { action, errors } from '../index.js'
import type { HandshakeOptions } from '../types/options.js'

/** A JWT from the Authorization header or the `jwt` cookie, like a typical app's. */
async function headerOrCookie (request: FastifyRequest): Promise<void> {
  const cookie = request.cookies.jwt
  if (request.headers.authorization === undefined && cookie !== undefined) request.headers.authorization = `Bearer ${cookie}`
  await request.jwtVerify()
}

async function appWith (t: Test, handshake: HandshakeOptions | false = {}, strategyCalls?: { n: number }): Promise<FastifyInstance> {
  const app = await build(t, { wsx: { connectionRateLimit: false, handshake: { attempts: 3, lockSeconds: 2, ...handshake } } })
  await app.register(fastifyCookie)
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws',
      authenticate: [async (request) => { if (strategyCalls) strategyCalls.n++; await headerOrCookie(request) }],
      ...(handshake === false && { handshake: false }),
      actions: {
        'public.ping': action({ public: true, handler: async () => ({ pong: true }) }),
        'me.get': action({ handler: async (_msg, conn) => ({ sub: conn.user.sub, via: conn.via }) })
      }
    })
  })
  return app
}

async function open (t: Test, app: FastifyInstance, headers: Record<string, string> = {}): Promise<TestClient> {
  const c = await connect(app, '/ws', { headers })
  t.teardown(() => c.close())
  return c
}

async function status (app: FastifyInstance, headers: Record<string, string>): Promise<UpgradeRefusedError | 'opened'> {
  try {
    const c = await connect(app, '/ws', { headers })
    await c.close()
    return 'opened'
  } catch (err) {
    if (err instanceof UpgradeRefusedError) return err
    throw err
  }
}

t.test('the decision table at the upgrade', async (t) => {
  const calls = { n: 0 }
  const app = await appWith(t, { attempts: 50 }, calls)
  const token = tokenFor(app, 'alice')

  const a = await open(t, app, { cookie: `jwt=${token}` })
  t.strictSame(await a.next(), { action: 'socket.authorized', data: { authenticated: true, via: 'upgrade' } }, 'a valid cookie alone: authenticated at the upgrade')
  t.equal(calls.n, 1, 'the strategies ran without any Authorization header')

  const b = await open(t, app, { cookie: 'jwt=expired' })
  t.strictSame(await b.next(), {
    action: 'socket.handshake',
    data: { authorize: 'socket.authorize', attempts: 50, lock_seconds: 2, timeout_seconds: 20, allow_unauth: ['public.ping'] }
  }, 'a failing cookie: the socket opens with the seed handshake frame, unchanged')
  t.match(await b.authorize(token), { action: 'socket.authorized', data: { via: 'authorize' } }, 'and the page authorizes in-band')

  const c = await open(t, app)
  t.match(await c.next(), { action: 'socket.handshake' }, 'nothing presented: the handshake')
  t.equal(calls.n, 4, 'the strategies ran on that upgrade too (they may use any header): a, b, b in-band, c')

  const refused = await status(app, { authorization: 'Bearer nope', cookie: `jwt=${token}` })
  t.match(refused, { statusCode: 401 }, 'an explicit credential that fails: 401, even with a valid cookie beside it')
  t.match(await status(app, { 'x-api-key': 'nope' }), { statusCode: 401 }, 'the API-key header is explicit too')
  t.match(await status(app, { authorization: `Bearer ${token}` }), 'opened', 'a valid header: opened')
})

t.test('handshake: false: every failure is a 401', async (t) => {
  const app = await appWith(t, false)
  const token = tokenFor(app, 'bob')
  t.match(await status(app, { cookie: 'jwt=bad' }), { statusCode: 401 }, 'a failing cookie')
  t.match(await status(app, {}), { statusCode: 401 }, 'nothing')
  const c = await open(t, app, { cookie: `jwt=${token}` })
  t.match(await c.next(), { action: 'socket.authorized', data: { via: 'upgrade' } }, 'a valid cookie')
})

t.test('failures at the upgrade and in-band share one count; 429 + Retry-After; locked in-band; the handshake says so', async (t) => {
  const app = await appWith(t)
  const token = tokenFor(app, 'carol')
  t.match(await status(app, { authorization: 'Bearer bad-1' }), { statusCode: 401 }, 'failure 1, at the upgrade')
  const c = await open(t, app)
  t.match(await c.next(), { action: 'socket.handshake', data: { attempts: 3 } })
  t.notOk('attempts_left' in (c.frames[0]!.data as object), 'not locked: no extra fields')
  t.match(await c.request('socket.authorize', { token: 'bad-2' }), { ok: false, error: { code: 'authentication_failed', attempts_left: 1 } }, 'failure 2, in-band: one left')
  t.match(await status(app, { cookie: 'jwt=bad' }), 'opened', 'a failing cookie falls back and does not count')
  t.match(await c.request('socket.authorize', { token: 'bad-3' }), { ok: false, error: { code: 'authentication_failed', attempts_left: 0 } }, 'failure 3: the lock')
  t.equal((await c.closed()).code, 4408)

  const locked = await status(app, { authorization: `Bearer ${token}` })
  t.match(locked, { statusCode: 429 }, 'a valid token at the upgrade of a locked address: 429')
  const retry = Number((locked as UpgradeRefusedError).headers['retry-after'])
  t.ok(retry >= 1 && retry <= 2, `with Retry-After (${retry})`)
  t.match(await status(app, { 'x-api-key': 'k' }), { statusCode: 429 }, 'any explicit credential: 429')

  const d = await open(t, app, { cookie: `jwt=${token}` })
  const frame = await d.next()
  t.match(frame, { action: 'socket.handshake', data: { attempts: 3, attempts_left: 0, retry_after: Number } }, 'no explicit credential: opens, and the handshake says locked')
  t.ok((frame.data as { retry_after: number }).retry_after >= 1)
  t.match(await d.request('public.ping'), { ok: true }, 'public actions still work')
  t.match(await d.request('socket.authorize', { token }), { ok: false, error: { code: 'locked', retry_after: Number } }, 'in-band: locked')

  // the lock ends on Date.now(): move past it instead of waiting 2 s
  fakeClock(t).tick(2100)
  const e = await open(t, app, { authorization: `Bearer ${token}` })
  t.match(await e.next(), { action: 'socket.authorized' }, 'after the lock, a valid token works')
})

t.test('a success does not clear the count: a valid credential between guesses does not reset the budget', async (t) => {
  const app = await appWith(t)
  const token = tokenFor(app, 'dave')
  const guesser = await open(t, app)
  await guesser.next()
  t.match(await guesser.request('socket.authorize', { token: 'guess-1' }), { error: { attempts_left: 2 } })
  // the same address authenticates successfully, at the upgrade and in-band
  const ok1 = await open(t, app, { authorization: `Bearer ${token}` })
  t.match(await ok1.next(), { action: 'socket.authorized' })
  const ok2 = await open(t, app)
  await ok2.next()
  t.match(await ok2.authorize(token), { action: 'socket.authorized' })
  t.match(await guesser.request('socket.authorize', { token: 'guess-2' }), { error: { attempts_left: 1 } }, 'the count went on')
  t.match(await status(app, { authorization: 'Bearer guess-3' }), { statusCode: 401 }, 'the third guess (at the upgrade) locks')
  t.match(await status(app, { authorization: `Bearer ${token}` }), { statusCode: 429 }, 'locked')
})

t.test('in-band credential fields are checked: wrong types and header injection are failed attempts', async (t) => {
  const app = await appWith(t, { attempts: 50 })
  const c = await open(t, app)
  await c.next()
  for (const data of [{}, { token: 42 }, { token: '' }, { token: 'a\r\nx-api-key: injected' }, { api_key: ['x'] }, { username: 'a:b', password: 'c' }, { session_id: 'a;b' }]) {
    t.match(await c.request('socket.authorize', data), { ok: false, error: { code: 'authentication_failed' } }, JSON.stringify(data))
  }
  t.ok(c.isOpen)
})

t.test('boot: credentials names are checked; an async strategy that also takes done is refused', async (t) => {
  const app = await build(t)
  const route = { url: '/x', authenticate: [async (request: FastifyRequest) => { await request.jwtVerify() }], actions: {} }
  t.throws(() => app.wsx.route({ ...route, credentials: { apiKeyHeader: 'bad header' } }), errors.WSX_ERR_ROUTE_INVALID)
  t.throws(() => app.wsx.route({ ...route, url: '/y', credentials: { sessionCookie: 'a;b' } }), errors.WSX_ERR_ROUTE_INVALID)
  // @ts-expect-error an unknown credentials key
  t.throws(() => app.wsx.route({ ...route, url: '/z', credentials: { cookie: 'x' } }), errors.WSX_ERR_ROUTE_INVALID)
  t.throws(() => app.wsx.route({ ...route, url: '/w', authenticate: [async (_request, _reply, done) => { done() }] }), errors.WSX_ERR_ROUTE_INVALID,
    'as Fastify refuses it for hooks')
  t.doesNotThrow(() => app.wsx.route({ ...route, url: '/ok', credentials: { apiKeyHeader: 'X-Service-Key', sessionCookie: false } }))
})

t.test('credentials: a custom API-key header is explicit at the upgrade and carries api_key in-band', async (t) => {
  const app = await build(t, { wsx: { connectionRateLimit: false, handshake: { attempts: 50 } } })
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws',
      credentials: { apiKeyHeader: 'X-Service-Key' },
      authenticate: [async (request) => {
        if (request.headers['x-service-key'] !== 'svc-1') throw Object.assign(new Error('bad key'), { statusCode: 401 })
        request.user = { sub: 'svc' }
      }],
      actions: { 'me.get': action({ handler: async (_msg, conn) => ({ sub: conn.user.sub }) }) }
    })
  })
  t.match(await status(app, { 'x-service-key': 'wrong' }), { statusCode: 401 }, 'explicit: 401')
  t.match(await status(app, { 'x-api-key': 'wrong' }), 'opened', 'x-api-key is no longer special on this route')
  const c = await open(t, app)
  await c.next()
  t.match(await c.authorize('unused'), { ok: false }, 'a token is not the key')
  t.match(await c.authorize({ api_key: 'svc-1' }), { action: 'socket.authorized' }, 'api_key travels in X-Service-Key')

  // the typed client sends the same credential kinds
  const client = createClient((await baseUrl(app)) + '/ws', { WebSocket, token: async () => ({ api_key: 'svc-1' }) })
  t.teardown(() => client.close())
  t.same(await client.ready(), { via: 'authorize' }, 'typed client: authorized with an API key')
  t.same(await client.request('me.get', {}), { sub: 'svc' })
})
