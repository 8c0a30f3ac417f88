// The upgrade (docs/protocol.md#the-upgrade), over real TCP: every refusal answers over HTTP and opens no
// socket. Tokens (bad, alg none, HS512, expired), params, origins, the connection rate
// limit (before auth runs), connection caps, handshake-less routes and query tokens.
import t, { type Test } from 'tap'
import { createHmac, randomBytes } from 'node:crypto'
import { connect as tcpConnect } from 'node:net'
import { Writable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { build, verifyJwt, tokenFor, SECRET } from './helpers/build.js'
import { eventually } from './helpers/eventually.js'
import { connect, UpgradeRefusedError, type TestClient } from '../testing/index.js'
import { action, Type } from '../index.js'
import type { RouteOptions, WsxPluginOptions } from '../types/options.js'

const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** A JWT signed by hand, so algorithm and claims are exactly what the test says. */
function signJwt (alg: 'HS256' | 'HS512' | 'none', claims: Record<string, unknown>, secret = SECRET): string {
  const head = b64url({ alg, typ: 'JWT' })
  const body = b64url(claims)
  if (alg === 'none') return `${head}.${body}.`
  const hash = alg === 'HS256' ? 'sha256' : 'sha512'
  return `${head}.${body}.${createHmac(hash, secret).update(`${head}.${body}`).digest('base64url')}`
}
const nowS = () => Math.floor(Date.now() / 1000)

/** Counts calls to the app's strategy, so tests can prove a check ran before auth. */
function spyStrategy () {
  const spy = {
    calls: 0,
    strategy: async function (request: FastifyRequest) {
      spy.calls++
      await request.jwtVerify()
    }
  }
  return spy
}

async function appWith (t: Test, route: Partial<RouteOptions> = {}, opts: { wsx?: WsxPluginOptions, logStream?: Writable } = {}): Promise<FastifyInstance> {
  const app = await build(t, {
    wsx: { connectionRateLimit: false, ...opts.wsx },
    ...(opts.logStream && { fastify: { logger: { level: 'debug', stream: opts.logStream } } })
  })
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws/chat/:room',
      authenticate: [verifyJwt],
      schema: {
        params: Type.Object({ room: Type.String({ pattern: '^[a-z0-9-]{1,32}$' }) }),
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })), token: Type.Optional(Type.String()) })
      },
      actions: {
        'conn.info': action({ handler: async (_msg, conn) => ({ user: conn.user.sub, params: conn.params, query: conn.query, via: conn.via }) })
      },
      ...route
    })
  })
  return app
}

async function refused (t: Test, p: Promise<TestClient>, status: number, message: string): Promise<UpgradeRefusedError | undefined> {
  try {
    const c = await p
    c.close()
    t.fail(`${message}: the upgrade was accepted`)
  } catch (err) {
    t.type(err, UpgradeRefusedError, message)
    t.equal((err as UpgradeRefusedError).statusCode, status, `${message}: HTTP ${status}`)
    return err as UpgradeRefusedError
  }
}

/** A raw HTTP upgrade: full control over headers (duplicates, Host). Resolves the status line's code. */
async function rawUpgrade (app: FastifyInstance, path: string, headerLines: string[]): Promise<{ status: number, head: string }> {
  if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  return new Promise((resolve, reject) => {
    const sock = tcpConnect(port, '127.0.0.1')
    let buf = ''
    sock.on('error', reject)
    sock.on('data', (chunk) => {
      buf += chunk.toString('latin1')
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      sock.destroy()
      resolve({ status: Number(buf.split(' ')[1]), head: buf.slice(0, end) })
    })
    sock.write([
      `GET ${path} HTTP/1.1`,
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      ...headerLines,
      '', ''
    ].join('\r\n'))
  })
}

const serverSockets = (app: FastifyInstance) => app.websocketServer.clients.size

t.test('tokens at the upgrade: bad, alg none, HS512, expired → 401 and no socket', async (t) => {
  // every refusal here counts toward the address's lock: room for all of them
  const app = await appWith(t, {}, { wsx: { handshake: { attempts: 20 } } })
  const claims = { sub: 'alice', exp: nowS() + 60 }
  const cases: Array<[string, string]> = [
    ['garbage', 'not-a-jwt'],
    ['wrong secret', signJwt('HS256', claims, 'another-secret-another-secret-1234')],
    ['alg none', signJwt('none', claims)],
    ['HS512 with the right secret', signJwt('HS512', claims)],
    ['expired', signJwt('HS256', { sub: 'alice', exp: nowS() - 5 })],
    ['no exp claim', signJwt('HS256', { sub: 'alice' })]
  ]
  for (const [name, token] of cases) {
    await refused(t, connect(app, '/ws/chat/general', { token }), 401, name)
  }
  const err = await refused(t, connect(app, '/ws/chat/general', { headers: { authorization: 'Basic Zm9vOmJhcg==' } }), 401, 'a non-Bearer credential')
  t.notOk(err?.headers['set-cookie'])
  t.equal(serverSockets(app), 0, 'no socket was ever opened')

  const good = await connect(app, '/ws/chat/general', { token: signJwt('HS256', claims) })
  t.teardown(() => good.close())
  t.strictSame(await good.next(), { action: 'socket.authorized', data: { authenticated: true, via: 'upgrade' } }, 'a valid header token: first frame socket.authorized via upgrade')
  t.match(await good.request('conn.info'), { ok: true, data: { user: 'alice', via: 'upgrade' } })
})

t.test('path params and querystring: validated with coercion, 400 when they fail', async (t) => {
  const app = await appWith(t)
  const token = tokenFor(app, 'alice')
  await refused(t, connect(app, '/ws/chat/NOT_OK', { token }), 400, 'params failing the pattern')
  await refused(t, connect(app, '/ws/chat/general?limit=500', { token }), 400, 'querystring over its maximum')
  await refused(t, connect(app, '/ws/chat/general?limit=abc', { token }), 400, 'querystring not an integer')
  // params are checked after auth: an anonymous upgrade to a bad room is still a 400 (handshake route)
  await refused(t, connect(app, '/ws/chat/Bad!'), 400, 'params fail without credentials too')
  t.equal(serverSockets(app), 0)

  const c = await connect(app, '/ws/chat/room-1?limit=5', { token })
  t.teardown(() => c.close())
  await c.next('socket.authorized')
  t.match(await c.request('conn.info'), { ok: true, data: { params: { room: 'room-1' }, query: { limit: 5 } } }, 'coerced: limit is a number')
  t.equal(typeof (await c.request('conn.info')).data, 'object')
})

t.test('origin: same-origin when no allow-list; lookalikes, duplicates and forwarded headers refused', async (t) => {
  const app = await appWith(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  const self = `http://127.0.0.1:${port}`
  const token = tokenFor(app, 'alice')

  const same = await connect(app, '/ws/chat/general', { token, origin: self })
  t.teardown(() => same.close())
  t.match(await same.next(), { action: 'socket.authorized' }, 'same-origin passes')
  const upper = await connect(app, '/ws/chat/general', { token, origin: `HTTP://127.0.0.1:${port}` })
  t.teardown(() => upper.close())
  t.match(await upper.next(), { action: 'socket.authorized' }, 'same-origin, scheme in capitals (normalised)')

  for (const origin of [
    `http://127.0.0.1:${port}.evil.com`,
    `http://127.0.0.1:${port + 1}`,
    `https://127.0.0.1:${port}`,
    'http://127.0.0.1',
    'http://evil.com',
    'null',
    'not a url'
  ]) {
    await refused(t, connect(app, '/ws/chat/general', { token, origin }), 403, `origin ${origin}`)
  }

  const noOrigin = await connect(app, '/ws/chat/general', { token })
  t.teardown(() => noOrigin.close())
  t.match(await noOrigin.next(), { action: 'socket.authorized' }, 'no Origin (not a browser) passes')

  const host = `127.0.0.1:${port}`
  const bearer = `Authorization: Bearer ${token}`
  t.equal((await rawUpgrade(app, '/ws/chat/general', [`Host: ${host}`, `Origin: ${self}`, bearer])).status, 101, 'raw: same-origin upgrades')
  t.equal((await rawUpgrade(app, '/ws/chat/general', [`Host: ${host}`, `Origin: ${self}`, `Origin: ${self}`, bearer])).status, 403, 'duplicate Origin headers are refused')
  t.equal((await rawUpgrade(app, '/ws/chat/general', [`Host: ${host}`, 'Origin: http://evil.com', 'X-Forwarded-Host: evil.com', 'X-Forwarded-Proto: http', 'Forwarded: host=evil.com', bearer])).status,
    403, 'forwarded headers are never consulted')
  t.equal((await rawUpgrade(app, '/ws/chat/general', [`Host: evil.com:${port}`, `Origin: ${self}`, bearer])).status, 403, 'Origin must match the Host the request was sent to')
})

t.test('origin: an allow-list matches exactly after normalisation; requireOrigin; "*"', async (t) => {
  const app = await build(t, { wsx: { connectionRateLimit: false, origins: ['http://localhost:3000', 'HTTPS://App.Example.com:443'] } })
  app.register(async (scope) => {
    const actions = { 'public.ping': action({ public: true, handler: async () => ({ pong: true }) }) }
    scope.wsx.route({ url: '/ws/list', actions })
    scope.wsx.route({ url: '/ws/strict', actions, requireOrigin: true })
    scope.wsx.route({ url: '/ws/any', actions, origins: '*' })
  })
  for (const origin of ['http://localhost:3000', 'HTTP://LOCALHOST:3000', 'http://localhost:3000/', 'https://app.example.com', 'https://APP.example.com:443']) {
    const c = await connect(app, '/ws/list', { origin })
    t.teardown(() => c.close())
    t.match(await c.next(), { action: 'socket.authorized', data: { authenticated: false } }, `allowed: ${origin}`)
  }
  for (const origin of ['http://localhost:3000.evil.com', 'http://localhost:3001', 'https://localhost:3000', 'http://localhost', 'http://evil.localhost:3000',
    'http://app.example.com', 'https://app.example.com:8443', 'http://localhost:3000/path', 'http://user@localhost:3000']) {
    await refused(t, connect(app, '/ws/list', { origin }), 403, `refused: ${origin}`)
  }
  await refused(t, connect(app, '/ws/strict'), 403, 'requireOrigin refuses an upgrade without Origin')
  const strict = await connect(app, '/ws/strict', { origin: 'http://localhost:3000' })
  t.teardown(() => strict.close())
  t.match(await strict.next(), { action: 'socket.authorized' }, 'requireOrigin with an allowed origin')
  const any = await connect(app, '/ws/any', { origin: 'http://whatever.example' })
  t.teardown(() => any.close())
  t.match(await any.next(), { action: 'socket.authorized' }, '"*" allows any origin')
  t.equal(serverSockets(app), 7)
})

t.test('connection rate limit: 429 with Retry-After before auth runs; bad origins cost nothing', async (t) => {
  const spy = spyStrategy()
  const app = await appWith(t, { authenticate: [spy.strategy], connectionRateLimit: { max: 2, timeWindow: 1000 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const token = tokenFor(app, 'alice')
  for (let i = 0; i < 3; i++) await refused(t, connect(app, '/ws/chat/general', { token, origin: 'http://evil.com' }), 403, `bad origin ${i}`)
  t.equal(spy.calls, 0, 'origin refusals never reach the strategy')
  for (let i = 0; i < 2; i++) {
    const c = await connect(app, '/ws/chat/general', { token })
    t.teardown(() => c.close())
    await c.next('socket.authorized')
  }
  t.equal(spy.calls, 2, 'the bad origins did not use the budget')
  const err = await refused(t, connect(app, '/ws/chat/general', { token }), 429, 'over the limit')
  t.ok(Number(err?.headers['retry-after']) >= 1, `Retry-After: ${String(err?.headers['retry-after'])}`)
  t.equal(spy.calls, 2, 'the strategy was not called for the refused upgrade')
  await refused(t, connect(app, '/ws/chat/general', { token: 'bad' }), 429, 'a bad token costs nothing more either')
  t.equal(spy.calls, 2)
})

t.test('connection caps: per address and per instance refuse at the upgrade; per user closes 1008', async (t) => {
  await t.test('per address', async (t) => {
    const app = await appWith(t, {}, { wsx: { maxConnectionsPerIp: 2 } })
    const token = tokenFor(app, 'alice')
    const a = await connect(app, '/ws/chat/general', { token })
    const b = await connect(app, '/ws/chat/general', { token })
    t.teardown(() => b.close())
    const err = await refused(t, connect(app, '/ws/chat/general', { token }), 429, 'third from one address')
    t.ok(err?.headers['retry-after'])
    await a.close()
    await eventually(() => app.wsx.connections.size, (n) => n <= 1, { what: 'the closed connection to go' })
    const c = await connect(app, '/ws/chat/general', { token })
    t.teardown(() => c.close())
    t.match(await c.next(), { action: 'socket.authorized' }, 'room again once one closed')
  })
  await t.test('per instance', async (t) => {
    const spy = spyStrategy()
    const app = await appWith(t, { authenticate: [spy.strategy] }, { wsx: { maxConnections: 1 } })
    const token = tokenFor(app, 'alice')
    const a = await connect(app, '/ws/chat/general', { token })
    t.teardown(() => a.close())
    await a.next()
    await refused(t, connect(app, '/ws/chat/general', { token }), 503, 'over the instance cap')
    t.equal(spy.calls, 1, 'refused before auth')
  })
  await t.test('per user', async (t) => {
    const app = await appWith(t, {}, { wsx: { maxConnectionsPerUser: 1 } })
    const a = await connect(app, '/ws/chat/general', { token: tokenFor(app, 'alice') })
    t.teardown(() => a.close())
    await a.next('socket.authorized')
    const again = await connect(app, '/ws/chat/general', { token: tokenFor(app, 'alice') })
    t.equal((await again.closed()).code, 1008, 'a second connection of the same user closes 1008')
    t.same(again.frames, [], 'before any frame')
    const bob = await connect(app, '/ws/chat/general', { token: tokenFor(app, 'bob') })
    t.teardown(() => bob.close())
    t.match(await bob.next(), { action: 'socket.authorized' }, 'another user is fine')
    t.match(await a.request('conn.info'), { ok: true }, 'the first connection still works')
  })
})

t.test('handshake: false requires authentication at the upgrade', async (t) => {
  const app = await appWith(t, { handshake: false })
  await refused(t, connect(app, '/ws/chat/general'), 401, 'no credentials')
  await refused(t, connect(app, '/ws/chat/general', { token: 'nope' }), 401, 'bad credentials')
  const c = await connect(app, '/ws/chat/general', { token: tokenFor(app, 'alice') })
  t.teardown(() => c.close())
  t.strictSame(await c.next(), { action: 'socket.authorized', data: { authenticated: true, via: 'upgrade' } })
  t.match(await c.request('socket.authorize', { token: tokenFor(app, 'alice') }), { ok: false, error: { code: 'authentication_failed' } }, 'no in-band authorize on such a route')
})

t.test('a strategy replying 403 at the upgrade is answered 403', async (t) => {
  const app = await appWith(t, {
    authenticate: [async (_request, reply) => { reply.code(403).send({ message: 'banned' }) }]
  })
  await refused(t, connect(app, '/ws/chat/general', { token: tokenFor(app, 'alice') }), 403, 'the strategy\'s own reply')
  const err = await refused(t, connect(app, '/ws/chat/general', { token: 'x' }), 403, 'whatever the token')
  t.ok(err)
})

t.test('tokenQueryParam: the token authenticates and never appears in any log line', async (t) => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(String(chunk)); cb() } })
  const app = await appWith(t, { tokenQueryParam: 'token' }, { logStream: stream })
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws/plain',
      authenticate: [verifyJwt],
      actions: { 'conn.info': action({ handler: async (_msg, conn) => ({ query: conn.query, via: conn.via }) }) }
    })
  })
  const token = tokenFor(app, 'alice')
  const c = await connect(app, `/ws/chat/general?limit=3&token=${token}`)
  t.teardown(() => c.close())
  t.strictSame(await c.next(), { action: 'socket.authorized', data: { authenticated: true, via: 'upgrade' } }, 'the query token authenticated the upgrade')
  const info = await c.request('conn.info')
  t.match(info, { ok: true, data: { user: 'alice', query: { limit: 3 } } })
  t.notOk('token' in (info.data as { query: object }).query, 'the token left conn.query')

  await refused(t, connect(app, '/ws/chat/general?token=bad.token.value'), 401, 'a bad query token is refused')

  // (a route that did not opt in logs its URL as Fastify does: use another token there)
  const other = tokenFor(app, 'bob')
  const plain = await connect(app, `/ws/plain?token=${other}`)
  t.teardown(() => plain.close())
  t.match(await plain.next(), { action: 'socket.handshake' }, 'off by default: another route ignores ?token=')
  t.match(await plain.authorize(token), { action: 'socket.authorized' }, 'in-band authorize (alice\'s token, never logged either)')
  t.match(await plain.request('conn.info'), { ok: true, data: { via: 'authorize' } })

  await c.close()
  const text = lines.join('')
  t.ok(text.includes('wsx frame'), 'debug frame logging was on')
  t.ok(text.includes('/ws/chat/general?limit=3&token=[REDACTED]'), 'the URL is logged with the token redacted')
  const signature = token.split('.')[2]!
  t.notOk(text.includes(signature), 'no token appears in any log line')
  t.notOk(text.includes('bad.token.value'), 'nor a refused one')
})

t.test('the upgrade checks run before the app\'s own scope hooks, and a same-tick burst is counted exactly', async (t) => {
  const app = await build(t)
  let scopeHookCalls = 0
  app.register(async (scope) => {
    scope.addHook('onRequest', async () => { scopeHookCalls++ })
    scope.wsx.route({
      url: '/ws',
      connectionRateLimit: { max: 3, timeWindow: 60_000 },
      actions: { 'public.ping': action({ public: true, handler: async () => ({ pong: true }) }) }
    })
  }, { prefix: '/scoped' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  await refused(t, connect(app, '/scoped/ws', { origin: 'http://evil.com' }), 403, 'foreign origin')
  t.equal(scopeHookCalls, 0, 'a refused origin never reaches the app\'s hook')
  // five upgrades at once: exactly three pass (the store counts a same-tick burst exactly)
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => connect(app, '/scoped/ws')))
  const opened = results.filter((r) => r.status === 'fulfilled')
  t.equal(opened.length, 3, 'three upgrades pass')
  t.equal(results.filter((r) => r.status === 'rejected' && (r.reason as UpgradeRefusedError).statusCode === 429).length, 2, 'two get 429')
  t.equal(scopeHookCalls, 3, 'rate-limited upgrades never reach the app\'s hook')
  for (const r of opened) await (r as PromiseFulfilledResult<TestClient>).value.close()
})
