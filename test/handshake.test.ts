// The in-band handshake (docs/protocol.md#authentication), over a real socket: the gate before authentication,
// strict mode, attempts and the lock (which survives reconnecting), the timeout timer,
// a message in the same TCP write as socket.authorize, handshake-only strategies and
// token expiry with refresh. Handler spies prove no unauthorized call reaches user code.
import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Socket } from 'node:net'
import { build, verifyJwt, tokenFor } from './helpers/build.js'
import { fakeClock } from './helpers/fake-clock.js'
import { eventually } from './helpers/eventually.js'
import { connect, type TestClient } from '../testing/index.js'
import { action, handshakeOnly, Type } from '../index.js'
import type { HandshakeOptions, RouteOptions } from '../types/options.js'

interface Spy { calls: Array<{ action: string, user: unknown }> }

async function appWith (t: Test, spy: Spy, handshake: HandshakeOptions = {}, route: Partial<RouteOptions> = {}): Promise<FastifyInstance> {
  const app = await build(t, { wsx: { connectionRateLimit: false } })
  const record = (name: string) => async (_msg: unknown, conn: { user: unknown }) => {
    spy.calls.push({ action: name, user: conn.user })
    return { ran: name, user: (conn.user as { sub?: string } | null)?.sub ?? null }
  }
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws',
      authenticate: [verifyJwt],
      handshake,
      actions: {
        'public.ping': action({ public: true, handler: record('public.ping') }),
        'chat.send': action({ request: Type.Object({ text: Type.String() }), handler: record('chat.send') }),
        'admin.stats': action({ handler: record('admin.stats') })
      },
      ...route
    })
  })
  return app
}

async function open (t: Test, app: FastifyInstance): Promise<TestClient> {
  const c = await connect(app, '/ws')
  t.teardown(() => c.close())
  t.match(await c.next(), { action: 'socket.handshake' })
  return c
}

const notAuthenticated = { code: 'not_authenticated', detail: 'Authentication credentials were not provided.' }

t.test('before authentication: protected and unknown actions answer alike, public ones run', async (t) => {
  const spy: Spy = { calls: [] }
  const app = await appWith(t, spy)
  const c = await open(t, app)
  t.strictSame(await c.request('chat.send', { text: 'x' }, { id: 'p', trace_id: 't' }), { id: 'p', ok: false, error: notAuthenticated, trace_id: 't' }, 'protected')
  t.strictSame(await c.request('no.such.action', {}, { id: 'u', trace_id: 't' }), { id: 'u', ok: false, error: notAuthenticated, trace_id: 't' }, 'unknown: the same answer')
  t.strictSame(await c.request('chat.send', { bad: 'data' }, { id: 'v', trace_id: 't' }), { id: 'v', ok: false, error: notAuthenticated, trace_id: 't' }, 'invalid data: the gate answers before the schema')
  t.strictSame(await c.request('channel.subscribe', { channel: 'x', params: {} }, { id: 's', trace_id: 't' }), { id: 's', ok: false, error: notAuthenticated, trace_id: 't' }, 'channel.subscribe is gated too')
  c.send({ action: 'admin.stats' })
  t.match(await c.next(), { id: null, ok: false, error: notAuthenticated }, 'no id: the error still comes, id null')
  t.same(spy.calls, [], 'no protected handler ran')
  t.match(await c.request('public.ping'), { ok: true, data: { ran: 'public.ping', user: null } }, 'a public action runs, with user null')
  t.match(await c.request('socket.ping'), { ok: true, data: { pong: true } })
  t.ok(c.isOpen, 'the socket stays open (not strict)')

  t.match(await c.authorize(tokenFor(app, 'alice')), { action: 'socket.authorized' })
  t.match(await c.request('chat.send', { text: 'x' }), { ok: true, data: { ran: 'chat.send', user: 'alice' } })
  t.match(await c.request('no.such.action'), { ok: false, error: { code: 'not_found' } }, 'once authenticated, unknown is not_found')
  t.same(spy.calls.map((x) => x.action), ['public.ping', 'chat.send'])
})

t.test('strict mode closes 4401 on the first protected or unknown action', async (t) => {
  const spy: Spy = { calls: [] }
  const app = await appWith(t, spy, { strict: true })
  const a = await open(t, app)
  t.match(await a.request('public.ping'), { ok: true }, 'public actions still work')
  a.send({ id: 'x', action: 'chat.send', data: { text: 'x' } })
  t.equal((await a.closed()).code, 4401)
  t.notOk(a.frames.some((f) => f.id === 'x'), 'closed without an answer')

  const b = await open(t, app)
  b.send({ id: 'y', action: 'what.ever' })
  t.equal((await b.closed()).code, 4401, 'unknown actions too')
  t.same(spy.calls.map((x) => x.action), ['public.ping'])

  const c = await open(t, app)
  t.match(await c.authorize(tokenFor(app, 'alice')), { action: 'socket.authorized' })
  t.match(await c.request('what.ever'), { ok: false, error: { code: 'not_found' } }, 'after authentication strict mode no longer applies')
})

t.test('authentication_failed with attempts_left, 4408, and a lock that survives reconnecting', async (t) => {
  const spy: Spy = { calls: [] }
  const app = await appWith(t, spy, { attempts: 3, lockSeconds: 1 })
  const a = await connect(app, '/ws')
  t.teardown(() => a.close())
  t.match(await a.next(), { action: 'socket.handshake', data: { attempts: 3, lock_seconds: 1 } })
  const failed = (left: number, id: string) => ({ id, ok: false, error: { code: 'authentication_failed', detail: 'Invalid token.', attempts_left: left }, trace_id: 'tr' })
  t.strictSame(await a.request('socket.authorize', { token: 'bad' }, { id: 'a1', trace_id: 'tr' }), failed(2, 'a1'))
  t.strictSame(await a.request('socket.authorize', {}, { id: 'a2', trace_id: 'tr' }), failed(1, 'a2'), 'a missing token counts')
  t.match(await a.request('chat.send', { text: 'x' }), { error: notAuthenticated }, 'still not authenticated, still open')
  t.strictSame(await a.request('socket.authorize', { token: tokenFor(app, 'alice') + 'x' }, { id: 'a3', trace_id: 'tr' }), failed(0, 'a3'), 'the last attempt')
  t.equal((await a.closed()).code, 4408, 'then close 4408')

  const b = await open(t, app)
  const locked = await b.request('socket.authorize', { token: tokenFor(app, 'alice') }, { id: 'b1', trace_id: 'tr' })
  t.strictSame(locked, { id: 'b1', ok: false, error: { code: 'locked', detail: 'Too many failed attempts; try again later.', retry_after: 1 }, trace_id: 'tr' },
    'a new connection from the same address is locked, even with a valid token')
  t.match(await b.request('chat.send', { text: 'x' }), { error: notAuthenticated }, 'and stays unauthenticated')
  t.same(spy.calls, [], 'nothing reached a handler')

  // the lock ends on Date.now(): move past it instead of waiting 1 s
  fakeClock(t).tick(1100)
  t.match(await b.authorize(tokenFor(app, 'alice')), { action: 'socket.authorized', data: { via: 'authorize' } }, 'once the lock ends a valid token works')
  t.match(await b.request('chat.send', { text: 'x' }), { ok: true })
  t.match(await b.request('socket.authorize', { token: 'bad' }), { ok: false, error: { code: 'authentication_failed', attempts_left: 2 } },
    'a success reset the count; a bad refresh fails without closing')
  t.ok(b.isOpen)
})

t.test('handshake timeout: close 4401 whether or not the client sends anything', async (t) => {
  const spy: Spy = { calls: [] }
  const app = await appWith(t, spy, { timeoutSeconds: 1 })
  // the timeout is a server timer armed at the connection: on the fake clock it fires when
  // the test moves time, so "at the timeout" is exact (open at 999 ms, closed at 1000 ms)
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  const silent = await connect(app, '/ws')
  const chatty = await connect(app, '/ws')
  const done = await connect(app, '/ws')
  t.teardown(() => done.close())
  // each handshake frame is sent as its timer is armed: every timer started at the same instant
  await silent.next('socket.handshake')
  await chatty.next('socket.handshake')
  t.match(await done.next(), { action: 'socket.handshake', data: { timeout_seconds: 1 } })
  t.match(await done.authorize(tokenFor(app, 'alice')), { action: 'socket.authorized' })
  // the chatty client pings every 100 ms; each is answered, so the server has seen it
  for (let ms = 100; ms < 1000; ms += 100) {
    await clock.tickAsync(100)
    await chatty.request('socket.ping')
  }
  await clock.tickAsync(99)
  t.ok(silent.isOpen && chatty.isOpen, 'both still open 1 ms before the timeout')
  await clock.tickAsync(1)
  // the close frames travel on real sockets: wait for them on the real clock
  await eventually(() => !silent.isOpen && !chatty.isOpen, { what: 'both to close at the timeout', timeout: 2000 })
  const [s, c] = await Promise.all([silent.closed(), chatty.closed()])
  t.equal(s.code, 4401, 'the silent client')
  t.equal(c.code, 4401, 'the client that kept pinging')
  t.same(silent.frames.map((f) => f.action), ['socket.handshake'], 'no frame besides the handshake: just the close')
  await clock.tickAsync(300)
  t.ok(done.isOpen, 'an authenticated connection is not affected')
  t.match(await done.request('chat.send', { text: 'x' }), { ok: true })
})

t.test('a public-only route without strategies has no handshake and no timeout', async (t) => {
  const app = await build(t, { wsx: { connectionRateLimit: false, handshake: { timeoutSeconds: 1 } } })
  app.register(async (scope) => {
    scope.wsx.route({ url: '/ws/public', actions: { 'public.ping': action({ public: true, handler: async () => ({ pong: 1 }) }) } })
  })
  // a handshake timer would be armed at the connection: on the fake clock, past its time
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  const c = await connect(app, '/ws/public')
  t.teardown(() => c.close())
  t.strictSame(await c.next(), { action: 'socket.authorized', data: { authenticated: false, via: null } })
  await clock.tickAsync(1200)
  t.ok(c.isOpen, 'still open past the handshake timeout')
  t.match(await c.request('public.ping'), { ok: true, data: { pong: 1 } })
})

t.test('a message in the same TCP write right behind socket.authorize runs after it', async (t) => {
  const spy: Spy = { calls: [] }
  const app = await appWith(t, spy)
  const c = await open(t, app)
  const tcp = (c.ws as unknown as { _socket: Socket })._socket
  tcp.cork()
  c.send({ id: 'auth', action: 'socket.authorize', data: { token: tokenFor(app, 'alice') } })
  c.send({ id: 'm1', action: 'chat.send', data: { text: 'right behind' } })
  c.send({ id: 'm2', action: 'admin.stats' })
  tcp.uncork()
  t.match(await c.next(), { id: 'auth', action: 'socket.authorized' })
  t.match(await c.next(), { id: 'm1', ok: true, data: { ran: 'chat.send', user: 'alice' } }, 'answered ok, never not_authenticated')
  t.match(await c.next(), { id: 'm2', ok: true })
  t.same(spy.calls.map((x) => x.action), ['chat.send', 'admin.stats'], 'each handler once, as alice')

  // the same with a bad token: the message behind it is refused and never reaches the handler
  const d = await open(t, app)
  const tcp2 = (d.ws as unknown as { _socket: Socket })._socket
  tcp2.cork()
  d.send({ id: 'auth', action: 'socket.authorize', data: { token: 'bad' } })
  d.send({ id: 'm1', action: 'chat.send', data: { text: 'sneaky' } })
  tcp2.uncork()
  t.match(await d.next(), { id: 'auth', ok: false, error: { code: 'authentication_failed' } })
  t.match(await d.next(), { id: 'm1', ok: false, error: notAuthenticated })
  t.equal(spy.calls.length, 2, 'no extra handler call')
})

t.test('handshake-only strategies: ignored at the upgrade, given only the token in-band', async (t) => {
  const seen: Array<{ headers: Record<string, unknown>, query: unknown, cookies: unknown }> = []
  const onlyToken = handshakeOnly(async function (this: FastifyInstance, request: FastifyRequest) {
    seen.push({ headers: { ...request.headers }, query: request.query, cookies: (request as unknown as { cookies: unknown }).cookies })
    const header = request.headers.authorization ?? ''
    const user = this.jwt.verify<{ sub: string }>(header.replace(/^Bearer /, ''))
    ;(request as unknown as { user: unknown }).user = { ...user, via: 'handshake-only' }
  })
  const spy: Spy = { calls: [] }
  const app = await appWith(t, spy, {}, { authenticate: [onlyToken] })
  const token = tokenFor(app, 'alice')
  const c = await connect(app, '/ws?x=1', { token, headers: { cookie: 'session=abc', 'x-api-key': 'k' } })
  t.teardown(() => c.close())
  t.match(await c.next(), { action: 'socket.handshake' }, 'a header token at the upgrade is not used by a handshake-only strategy')
  t.equal(seen.length, 0, 'the strategy did not run at the upgrade')
  t.match(await c.authorize(token), { action: 'socket.authorized', data: { via: 'authorize' } })
  t.equal(seen.length, 1)
  t.strictSame(Object.keys(seen[0]!.headers), ['authorization'], 'the view carries only the authorization header')
  t.equal(seen[0]!.headers.authorization, `Bearer ${token}`)
  t.strictSame(seen[0]!.query, {}, 'no query')
  t.strictSame(seen[0]!.cookies, {}, 'no cookies')
  t.match(await c.request('chat.send', { text: 'x' }), { ok: true, data: { user: 'alice' } })
  t.match(spy.calls[0]!.user, { sub: 'alice', via: 'handshake-only' })

  // mixed: the ordinary strategy runs at the upgrade, the handshake-only one does not
  const mixedApp = await appWith(t, spy, {}, { authenticate: [onlyToken, verifyJwt] })
  const m = await connect(mixedApp, '/ws', { token: tokenFor(mixedApp, 'bob') })
  t.teardown(() => m.close())
  t.match(await m.next(), { action: 'socket.authorized', data: { via: 'upgrade' } })
  t.equal(seen.length, 1, 'still only the one in-band call')
})

t.test('token expiry: socket.expired, refresh in the grace window, another user refused, else 4401', async (t) => {
  const spy: Spy = { calls: [] }
  const app = await appWith(t, spy, { expiryGraceSeconds: 1 })
  const refresher = await open(t, app)
  t.match(await refresher.authorize(tokenFor(app, 'alice', {}, 2)), { action: 'socket.authorized' })
  const lapsing = await connect(app, '/ws', { token: tokenFor(app, 'carol', {}, 2) })
  t.teardown(() => lapsing.close())
  t.match(await lapsing.next(), { action: 'socket.authorized', data: { via: 'upgrade' } })
  // a route without the handshake cannot refresh: the credential ends at exp all the same
  const noHandshakeApp = await appWith(t, { calls: [] }, {}, { handshake: false })
  const pinned = await connect(noHandshakeApp, '/ws', { token: tokenFor(noHandshakeApp, 'dave', {}, 2) })
  t.teardown(() => pinned.close())
  t.match(await pinned.next(), { action: 'socket.authorized', data: { via: 'upgrade' } })
  t.match(await refresher.request('chat.send', { text: 'before' }), { ok: true })
  const before = spy.calls.length

  const expired = { action: 'socket.expired', data: { grace_seconds: 1 } }
  t.strictSame(await refresher.next('socket.expired', 3500), expired, 'socket.expired at exp')
  t.strictSame(await lapsing.next('socket.expired', 3500), expired, 'an upgrade credential expires too')
  t.match(await refresher.request('chat.send', { text: 'stale' }), { ok: false, error: notAuthenticated }, 'protected actions refuse a stale identity')
  t.match(await refresher.request('public.ping'), { ok: true }, 'public actions still work')
  t.equal(spy.calls.length, before + 1, 'only the public handler ran')

  t.strictSame(await refresher.request('socket.authorize', { token: tokenFor(app, 'bob') }, { id: 'r0', trace_id: 'tr' }), {
    id: 'r0', ok: false, error: { code: 'permission_denied', detail: 'The new token names another user.' }, trace_id: 'tr'
  }, 'a refresh naming another user is refused')
  t.match(await refresher.request('chat.send', { text: 'still stale' }), { ok: false, error: notAuthenticated }, 'and the connection did not become bob')
  t.strictSame(await refresher.request('socket.authorize', { token: tokenFor(app, 'alice') }, { id: 'r1' }),
    { id: 'r1', action: 'socket.authorized', data: { authenticated: true, via: 'authorize' } }, 'a fresh token for the same user refreshes')
  t.match(await refresher.request('chat.send', { text: 'fresh' }), { ok: true, data: { user: 'alice' } }, 'actions work again')

  t.equal((await lapsing.closed(2500)).code, 4401, 'no refresh: close 4401 after the grace')
  t.strictSame(pinned.frames[1], { action: 'socket.expired', data: { grace_seconds: 0 } }, 'handshake: false: socket.expired with no grace')
  t.equal((await pinned.closed(500)).code, 4401, 'then 4401 at once')
  // real time: expiry is checked by an interval the app starts at boot, against JWT exp in
  // whole seconds; faking it would mean faking every timer of the app's boot
  await sleep(300)
  t.ok(refresher.isOpen, 'the refreshed connection outlived its old grace window')
  t.equal(spy.calls.filter((x) => x.action === 'chat.send').length, 2, 'chat.send ran only with a valid identity')
})
