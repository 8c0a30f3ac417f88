// Fail-closed behaviour over a real socket: binary and bad frames (before and after
// authentication), prototype keys, and a sweep proving that no unauthenticated frame of
// any kind reaches user code.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, verifyJwt, tokenFor } from './helpers/build.js'
import { connect, type TestClient } from '../testing/index.js'
import { action, Type } from '../index.js'

interface Spy { calls: string[] }

async function appWith (t: Test, spy: Spy): Promise<FastifyInstance> {
  const app = await build(t, { wsx: { connectionRateLimit: false } })
  const record = (name: string) => async (msg: { data: unknown }) => { spy.calls.push(name); return { data: msg.data } }
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws',
      authenticate: [verifyJwt],
      actions: {
        'public.ping': action({ public: true, handler: record('public.ping') }),
        'chat.send': action({ request: Type.Object({ text: Type.String() }), handler: record('chat.send') }),
        'user.update': action({ request: Type.Object({ name: Type.Optional(Type.String()) }), handler: record('user.update') }),
        'admin.stats': action({ handler: record('admin.stats') })
      }
    })
  })
  return app
}

async function anonymous (t: Test, app: FastifyInstance): Promise<TestClient> {
  const c = await connect(app, '/ws')
  t.teardown(() => c.close())
  await c.next('socket.handshake')
  return c
}

async function authed (t: Test, app: FastifyInstance): Promise<TestClient> {
  const c = await connect(app, '/ws', { token: tokenFor(app, 'alice') })
  t.teardown(() => c.close())
  await c.next('socket.authorized')
  return c
}

t.test('binary frames: 4400 before authentication, 1003 after', async (t) => {
  const spy: Spy = { calls: [] }
  const app = await appWith(t, spy)
  const before = await anonymous(t, app)
  before.sendRaw(Buffer.from(JSON.stringify({ id: 1, action: 'public.ping' })))
  t.equal((await before.closed()).code, 4400, 'binary before auth')

  const after = await authed(t, app)
  after.sendRaw(Buffer.from(JSON.stringify({ id: 1, action: 'chat.send', data: { text: 'x' } })))
  t.equal((await after.closed()).code, 1003, 'binary after auth')
  t.same(spy.calls, [], 'neither reached a handler')

  const fresh = await authed(t, app)
  t.match(await fresh.request('chat.send', { text: 'x' }), { ok: true }, 'a fresh connection works')
})

t.test('before authentication a bad frame closes 4400 with no answer: no second chance to probe', async (t) => {
  const spy: Spy = { calls: [] }
  const app = await appWith(t, spy)
  for (const bad of ['not json', '[]', '{"id":"x"}', '{"action":"a..b"}', '{"action":"chat.send","data":5}', '{"action":"x","id":1.5}', '{"__proto__":{"x":1},"action":"public.ping"}']) {
    const c = await anonymous(t, app)
    c.sendRaw(bad)
    t.equal((await c.closed()).code, 4400, `closes on ${bad}`)
    t.same(c.frames.map((f) => f.action), ['socket.handshake'], `${bad}: nothing answered`)
  }
  t.same(spy.calls, [])
  const c = await anonymous(t, app)
  t.match(await c.request('public.ping'), { ok: true }, 'a fresh connection works')
})

t.test('__proto__ and constructor.prototype keys: parse_error, nothing polluted', async (t) => {
  const spy: Spy = { calls: [] }
  const app = await appWith(t, spy)
  const c = await authed(t, app)
  const frames = [
    '{"id":"p1","action":"user.update","data":{"__proto__":{"isAdmin":true}}}',
    '{"id":"p2","action":"user.update","data":{"name":"x","nested":{"__proto__":{"isAdmin":true}}}}',
    '{"id":"p3","action":"user.update","__proto__":{"isAdmin":true}}',
    '{"id":"p4","action":"user.update","data":{"constructor":{"prototype":{"isAdmin":true}}}}',
    '{"id":"p5","action":"user.update","data":{"\\u005f_proto__":{"isAdmin":true}}}'
  ]
  for (const [i, text] of frames.entries()) {
    c.sendRaw(text)
    const reply = await c.next()
    t.strictSame(reply, {
      id: `p${i + 1}`,
      ok: false,
      error: { code: 'parse_error', detail: 'The frame contains a forbidden key ("__proto__", or "constructor" with "prototype").' }
    }, `${text}: says what is wrong, and echoes the id it could read`)
    t.match(await c.request('user.update', { name: 'ok' }), { ok: true }, 'still works')
  }
  // an id found only under the prototype key is not the envelope's id
  c.sendRaw('{"action":"user.update","__proto__":{"id":"smuggled"}}')
  t.match(await c.next(), { id: null, ok: false, error: { code: 'parse_error' } }, 'no own id: null')
  t.equal(({} as Record<string, unknown>).isAdmin, undefined, 'Object.prototype is untouched')
  t.notOk(Object.hasOwn(Object.prototype, 'isAdmin'))
  t.same(spy.calls, ['user.update', 'user.update', 'user.update', 'user.update', 'user.update'], 'only the clean frames ran')
  // an ordinary key named like a prototype word is fine
  t.match(await c.request('user.update', { name: 'constructor' }), { ok: true, data: { data: { name: 'constructor' } } })
})

t.test('the gate sweep: nothing unauthenticated reaches user code', async (t) => {
  const spy: Spy = { calls: [] }
  const app = await appWith(t, spy)
  const c = await anonymous(t, app)
  const names = ['chat.send', 'user.update', 'admin.stats', 'admin', 'ADMIN.STATS', 'chat.send.x', 'socket.authorized', 'socket.handshake',
    'socket.expired', 'channel.subscribe', 'channel.unsubscribe', 'constructor', '__proto__', 'toString', 'hasOwnProperty']
  for (const name of names) {
    const reply = await c.request(name, { text: 'x', name: 'x' })
    t.match(reply, { ok: false, error: { code: 'not_authenticated' } }, name)
  }
  // a flood of bad authorize attempts does not open the gate either
  const token = tokenFor(app, 'alice')
  t.match(await c.request('socket.authorize', { token: token.slice(0, -2) }), { error: { code: 'authentication_failed' } }, 'tampered signature')
  t.match(await c.request('socket.authorize', { token: [token] }), { error: { code: 'authentication_failed' } }, 'token of the wrong type')
  t.equal((await c.closed()).code, 4408, 'attempts exhausted')
  t.same(spy.calls, [], 'no handler ran')
  // the lock covers the upgrade too: even a valid token from this address waits it out
  const refusal = await connect(app, '/ws', { token }).then((c) => c.close(), (err: unknown) => err)
  t.match(refusal, { statusCode: 429, headers: { 'retry-after': /^\d+$/ } }, 'a locked address gets 429 with Retry-After at the upgrade')

  const d = await authed(t, await appWith(t, { calls: [] }))
  for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'socket.authorized']) {
    t.match(await d.request(name), { ok: false, error: { code: 'not_found' } }, `authenticated: ${name} is not an action`)
  }
})
