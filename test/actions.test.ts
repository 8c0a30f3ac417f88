// Actions over a real socket: validation_error fields, server_error without leaks, the
// one error mapping (WsxError, Fastify HTTP errors), permissions (built-in, app,
// object-level, preHandler hooks), throttles and 4429, ordering, crash safety and groups.
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { build, verifyJwt, tokenFor } from './helpers/build.js'
import { eventually } from './helpers/eventually.js'
import { fakeClock } from './helpers/fake-clock.js'
import { connect, type TestClient } from '../testing/index.js'
import { action, Type, WsxError, hasRole, hasScope, allOf, anyOf, isAuthenticated } from '../index.js'
import type { WsxPluginOptions } from '../types/options.js'
import type { AnyAction } from '../types/route.js'

/** Captures log lines as parsed objects. */
function logSink () {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line))
      cb()
    }
  })
  return { lines, stream }
}

async function appWith (t: Test, actions: Record<string, AnyAction>, opts: { wsx?: WsxPluginOptions, logStream?: Writable } = {}): Promise<FastifyInstance> {
  const app = await build(t, {
    wsx: opts.wsx ?? {},
    ...(opts.logStream && { fastify: { logger: { level: 'info', stream: opts.logStream } } })
  })
  app.register(async (scope) => {
    scope.wsx.route({ url: '/ws', authenticate: [verifyJwt], actions })
  })
  return app
}

async function authed (t: Test, app: FastifyInstance, sub = 'alice', claims: Record<string, unknown> = {}): Promise<TestClient> {
  const c = await connect(app, '/ws', { token: tokenFor(app, sub, claims) })
  t.teardown(() => c.close())
  t.match(await c.next(), { action: 'socket.authorized' })
  return c
}

t.test('validation_error: fields with dotted paths, the root as "", required and unknown fields', async (t) => {
  let calls = 0
  const app = await appWith(t, {
    'order.create': action({
      request: Type.Object({
        note: Type.Optional(Type.String({ maxLength: 3 })),
        items: Type.Array(Type.Object({ name: Type.String({ minLength: 1 }), qty: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }), { maxItems: 2 })
      }, { additionalProperties: false }),
      handler: async () => { calls++; return {} }
    }),
    'pick.some': action({
      request: Type.Object({ a: Type.Optional(Type.String()), b: Type.Optional(Type.String()) }, { minProperties: 1 }),
      handler: async () => { calls++; return {} }
    })
  })
  const c = await authed(t, app)

  t.strictSame(await c.request('order.create', { items: [{ name: '', qty: 0 }, { name: 'ok', qty: 1, color: 'red' }], extra: true }, { id: 'v1', trace_id: 'tv' }), {
    id: 'v1',
    ok: false,
    error: {
      code: 'validation_error',
      detail: 'Invalid input.',
      fields: {
        extra: ['Unknown field.'],
        'items.0.name': ['Must NOT have fewer than 1 characters.'],
        'items.0.qty': ['Must be >= 1.'],
        'items.1.color': ['Unknown field.']
      }
    },
    trace_id: 'tv'
  }, 'every error at once, nested paths dotted')

  t.match(await c.request('order.create', {}), { ok: false, error: { code: 'validation_error', fields: { items: ['Must have required property \'items\'.'] } } }, 'required: the missing field is the path')
  t.match(await c.request('order.create', { items: 'x' }), { ok: false, error: { fields: { items: ['Must be array.'] } } })
  t.match(await c.request('order.create', { items: [], note: 'long' }), { ok: false, error: { fields: { note: ['Must NOT have more than 3 characters.'] } } })
  t.strictSame((await c.request('pick.some', {})).error, {
    code: 'validation_error', detail: 'Invalid input.', fields: { '': ['Must NOT have fewer than 1 properties.'] }
  }, 'an error on the object itself is under ""')
  t.equal(calls, 0, 'the handler never ran for invalid data')
  t.match(await c.request('order.create', { items: [{ name: 'a', qty: 2 }] }), { ok: true }, 'then a valid request works')
  t.equal(calls, 1)
})

t.test('server_error: a generic detail, never the internal message; logged with the trace_id', async (t) => {
  const sink = logSink()
  const app = await appWith(t, {
    'boom.throw': action({ handler: async () => { throw new Error('db password is hunter2') } }),
    'boom.sync': action({ handler: () => { throw new TypeError('sync secret') } }),
    'boom.string': action({ handler: async () => { throw 'a string secret' } }), // eslint-disable-line no-throw-literal
    'boom.status500': action({ handler: async () => { throw Object.assign(new Error('internal 500 secret'), { statusCode: 500 }) } }),
    'boom.response': action({
      response: Type.Object({ user: Type.String() }),
      handler: async () => ({ user: 42 }) as never
    }),
    'ok.fine': action({ handler: async () => ({ fine: true }) })
  }, { logStream: sink.stream })
  const c = await authed(t, app)
  const generic = { code: 'server_error', detail: 'A server error occurred.' }
  for (const name of ['boom.throw', 'boom.sync', 'boom.string', 'boom.status500', 'boom.response']) {
    const reply = await c.request(name, {}, { id: name, trace_id: `trace-${name}` })
    t.strictSame(reply, { id: name, ok: false, error: generic, trace_id: `trace-${name}` }, name)
    t.notMatch(JSON.stringify(reply), /secret|hunter2|stack|schema/, `${name}: nothing internal on the wire`)
    t.match(await c.request('ok.fine'), { ok: true, data: { fine: true } }, `${name}: the connection still works`)
  }
  const logged = sink.lines.find((l) => l.trace_id === 'trace-boom.throw' && l.level === 50)
  t.ok(logged, 'the handler failure is logged at error level with the trace_id')
  t.match(logged, { err: { message: 'db password is hunter2' } }, 'the log has the real error')
  t.ok(sink.lines.some((l) => l.trace_id === 'trace-boom.response' && l.level === 50), 'a response schema failure is logged with the trace_id')
})

t.test('the one error mapping: WsxError and Fastify HTTP errors thrown by a handler', async (t) => {
  const httpError = (statusCode: number, message: string) => Object.assign(new Error(message), { statusCode })
  const app = await appWith(t, {
    'wsx.denied': action({ handler: async () => { throw new WsxError('permission_denied', 'Not your room.') } }),
    'wsx.validation': action({ handler: async () => { throw new WsxError('validation_error', 'Bad room.', { fields: { room: ['Closed.'] } }) } }),
    'wsx.throttled': action({ handler: async () => { throw new WsxError('throttled', undefined, { retryAfter: 7 }) } }),
    'http.404': action({ handler: async () => { throw httpError(404, 'No such room.') } }),
    'http.403': action({ handler: async () => { throw httpError(403, 'Members only.') } }),
    'http.401': action({ handler: async () => { throw httpError(401, 'Who are you?') } }),
    'http.400': action({ handler: async () => { throw httpError(400, 'Bad request.') } }),
    'http.429': action({ handler: async () => { throw httpError(429, 'Slow down.') } }),
    'http.418': action({ handler: async () => { throw httpError(418, 'teapot secret') } })
  })
  const c = await authed(t, app)
  const cases: Array<[string, Record<string, unknown>]> = [
    ['wsx.denied', { code: 'permission_denied', detail: 'Not your room.' }],
    ['wsx.validation', { code: 'validation_error', detail: 'Bad room.', fields: { room: ['Closed.'] } }],
    ['wsx.throttled', { code: 'throttled', detail: 'Request was throttled.', retry_after: 7 }],
    ['http.404', { code: 'not_found', detail: 'No such room.' }],
    ['http.403', { code: 'permission_denied', detail: 'Members only.' }],
    ['http.401', { code: 'not_authenticated', detail: 'Who are you?' }],
    ['http.400', { code: 'validation_error', detail: 'Bad request.' }],
    ['http.429', { code: 'throttled', detail: 'Slow down.' }],
    ['http.418', { code: 'server_error', detail: 'A server error occurred.' }]
  ]
  for (const [name, error] of cases) {
    t.strictSame(await c.request(name, {}, { id: name, trace_id: 'm' }), { id: name, ok: false, error, trace_id: 'm' }, name)
  }
  t.ok(c.isOpen, 'none of these closes the connection')
})

t.test('permissions: built-ins, app checks, object-level, preHandler hooks; denied never reaches the handler', async (t) => {
  const handled: string[] = []
  const loads: unknown[] = []
  const seenByCheck: unknown[] = []
  const handler = (name: string) => async (msg: { object?: unknown }) => { handled.push(name); return { object: msg.object ?? null } }
  const rooms: Record<string, { owner: string }> = { r1: { owner: 'alice' }, r2: { owner: 'bob' } }
  const app = await appWith(t, {
    'admin.only': action({ permissions: [hasRole('admin')], handler: handler('admin.only') }),
    'scope.write': action({ permissions: [hasScope('chat:write', 'chat:read')], handler: handler('scope.write') }),
    'app.check': action({
      request: Type.Object({ n: Type.Integer() }),
      permissions: [isAuthenticated, async (msg) => (msg.data as { n: number }).n % 2 === 0],
      handler: handler('app.check')
    }),
    'combo.any': action({ permissions: [anyOf(hasRole('admin'), hasScope('combo'))], handler: handler('combo.any') }),
    'combo.all': action({ permissions: [allOf(hasRole('user'), hasScope('combo'))], handler: handler('combo.all') }),
    'room.edit': action({
      request: Type.Object({ room: Type.String() }),
      loadObject: async (msg) => { loads.push(msg.data.room); return rooms[msg.data.room] ?? null },
      permissions: [
        (msg) => { seenByCheck.push(msg.object); return msg.object !== null },
        (msg, conn) => (msg.object as { owner: string }).owner === (conn.user as { sub: string }).sub
      ],
      handler: handler('room.edit')
    }),
    'hook.reply403': action({
      preHandler: [async (request, reply) => {
        if ((request.user as { sub: string }).sub !== 'alice') reply.code(403).send({ message: 'no' })
      }],
      handler: handler('hook.reply403')
    }),
    'hook.throw403': action({
      preHandler: async () => { throw Object.assign(new Error('Hook says no.'), { statusCode: 403 }) },
      handler: handler('hook.throw403')
    }),
    'hook.throwPlain': action({
      preHandler: async () => { throw new Error('hook internal secret') },
      handler: handler('hook.throwPlain')
    }),
    'hook.done': action({
      preHandler: [
        function (request: FastifyRequest, _reply: unknown, done: (err?: Error) => void) { (request as unknown as { seen: boolean }).seen = true; done() } as never,
        async (request) => {
          // the request view carries the message data as `body` and the user
          if ((request.body as { ok?: boolean }).ok !== true) throw new WsxError('permission_denied', 'Body says no.')
        }
      ],
      handler: handler('hook.done')
    })
  })
  const denied = { code: 'permission_denied', detail: 'You do not have permission to perform this action.' }

  const user = await authed(t, app, 'alice', { role: 'user', scope: 'chat:read combo' })
  const admin = await authed(t, app, 'root', { role: 'admin', scopes: ['chat:write', 'chat:read'] })

  t.strictSame(await user.request('admin.only', {}, { id: 1, trace_id: 'p' }), { id: 1, ok: false, error: denied, trace_id: 'p' }, 'hasRole denies')
  t.match(await admin.request('admin.only'), { ok: true }, 'hasRole allows')
  t.match(await user.request('scope.write'), { ok: false, error: denied }, 'hasScope needs every scope')
  t.match(await admin.request('scope.write'), { ok: true }, 'hasScope reads a scopes array')
  t.match(await user.request('app.check', { n: 1 }), { ok: false, error: denied }, 'an app check denies')
  t.match(await user.request('app.check', { n: 2 }), { ok: true }, 'an app check allows')
  t.match(await user.request('combo.any'), { ok: true }, 'anyOf')
  t.match(await admin.request('combo.any'), { ok: true }, 'anyOf (other branch)')
  t.match(await user.request('combo.all'), { ok: true }, 'allOf')
  t.match(await admin.request('combo.all'), { ok: false, error: denied }, 'allOf denies when one says no')

  t.match(await user.request('room.edit', { room: 'r2' }), { ok: false, error: denied }, 'object-level: not the owner')
  t.match(await user.request('room.edit', { room: 'nope' }), { ok: false, error: denied }, 'object-level: no object')
  t.match(await user.request('room.edit', { room: 'r1' }), { ok: true, data: { object: { owner: 'alice' } } }, 'object-level: the handler sees msg.object')
  t.same(loads, ['r2', 'nope', 'r1'], 'the object is loaded once per message')
  t.same(seenByCheck, [{ owner: 'bob' }, null, { owner: 'alice' }], 'the checks see the loaded object')

  t.strictSame((await admin.request('hook.reply403', {}, { id: 'h', trace_id: 'h' })), { id: 'h', ok: false, error: denied, trace_id: 'h' }, 'a preHandler replying 403')
  t.match(await user.request('hook.reply403'), { ok: true })
  t.match(await user.request('hook.throw403'), { ok: false, error: { code: 'permission_denied', detail: 'Hook says no.' } }, 'a preHandler throwing a 403')
  t.match(await user.request('hook.throwPlain'), { ok: false, error: { code: 'server_error', detail: 'A server error occurred.' } }, 'a preHandler throwing anything else')
  t.match(await user.request('hook.done', { ok: false }), { ok: false, error: { code: 'permission_denied', detail: 'Body says no.' } }, 'a callback-style hook, then a WsxError')
  t.match(await user.request('hook.done', { ok: true }), { ok: true })

  t.same(handled.sort(), ['admin.only', 'app.check', 'combo.all', 'combo.any', 'combo.any', 'hook.done', 'hook.reply403', 'room.edit', 'scope.write'].sort(),
    'the handler ran only for allowed requests')
})

t.test('stages run in order: throttle, then schema, then permissions, then handler', async (t) => {
  const order: string[] = []
  const app = await appWith(t, {
    'staged.run': action({
      request: Type.Object({ n: Type.Integer() }),
      throttle: { max: 2, timeWindow: 1000 },
      permissions: [async () => { order.push('permission'); return false }],
      handler: async () => { order.push('handler'); return {} }
    })
  })
  const c = await authed(t, app)
  t.match(await c.request('staged.run', { n: 'x' }), { error: { code: 'validation_error' } })
  t.same(order, [], 'invalid data never reaches the permission')
  t.match(await c.request('staged.run', { n: 1 }), { error: { code: 'permission_denied' } })
  t.same(order, ['permission'], 'a denial never reaches the handler')
  t.match(await c.request('staged.run', { n: 'x' }), { error: { code: 'throttled', retry_after: 1 } }, 'the throttle answers before the schema')
})

t.test('throttled with retry_after, keyed by user; close 4429 after repeated throttling', async (t) => {
  let calls = 0
  const app = await appWith(t, {
    'chat.send': action({ throttle: { max: 2, timeWindow: 1000 }, handler: async () => { calls++; return {} } }),
    'chat.free': action({ handler: async () => ({}) })
  }, { wsx: { maxThrottledInARow: 3 } })
  const a = await authed(t, app, 'alice')
  t.match(await a.request('chat.send'), { ok: true })
  t.match(await a.request('chat.send'), { ok: true })
  t.strictSame(await a.request('chat.send', {}, { id: 'th', trace_id: 'tt' }), {
    id: 'th', ok: false, error: { code: 'throttled', detail: 'Request was throttled.', retry_after: 1 }, trace_id: 'tt'
  })
  t.match(await a.request('chat.free'), { ok: true }, 'other actions are not throttled, and the streak resets')

  const a2 = await authed(t, app, 'alice')
  t.match(await a2.request('chat.send'), { ok: false, error: { code: 'throttled' } }, 'the bucket is the user\'s, not the connection\'s')
  const b = await authed(t, app, 'bob')
  t.match(await b.request('chat.send'), { ok: true }, 'another user has their own bucket')

  // keep sending before retry_after elapsed: the third such message in a row closes 4429
  a2.send({ id: 'x1', action: 'chat.send' })
  a2.send({ id: 'x2', action: 'chat.send' })
  a2.send({ id: 'x3', action: 'chat.send' })
  const closed = await a2.closed()
  t.equal(closed.code, 4429)
  t.equal(a2.frames.filter((f) => f.ok === false && f.error?.code === 'throttled').length, 4, 'the first refusal, then three that ignored its retry_after')
  t.equal(calls, 3, 'no throttled request reached the handler')

  // the window is counted on Date.now(): move it past the window instead of waiting 1 s
  fakeClock(t).tick(1050)
  t.match(await a.request('chat.send'), { ok: true }, 'after the window the user may send again')
})

t.test('the per-connection message budget answers throttled', async (t) => {
  let calls = 0
  const app = await appWith(t, { 'any.thing': action({ handler: async () => { calls++; return {} } }) }, { wsx: { messageRateLimit: { max: 3, timeWindow: 1000 } } })
  const c = await authed(t, app)
  for (let i = 0; i < 3; i++) t.match(await c.request('any.thing'), { ok: true })
  t.match(await c.request('any.thing'), { ok: false, error: { code: 'throttled', retry_after: 1 } })
  t.match(await c.request('socket.ping'), { ok: true, data: { pong: true } }, 'socket.ping is not counted')
  t.equal(calls, 3)
  const fresh = await authed(t, app)
  t.match(await fresh.request('any.thing'), { ok: true }, 'the budget belongs to one connection')
})

t.test('replies in arrival order with maxInflight 1; throws and rejections never crash the process', async (t) => {
  const events: string[] = []
  const app = await appWith(t, {
    'slow.one': action({ request: Type.Object({ ms: Type.Integer(), tag: Type.String() }), handler: async (msg) => { events.push(`start ${msg.data.tag}`); await sleep(msg.data.ms); events.push(`end ${msg.data.tag}`); return { tag: msg.data.tag } } }),
    'bad.sync': action({ handler: () => { throw new Error('sync') } }),
    'bad.reject': action({ handler: () => Promise.reject(new Error('reject')) }),
    'bad.later': action({ handler: async () => { await sleep(5); throw new RangeError('later') } })
  })
  const c = await authed(t, app)
  const ids = ['a', 'b', 'c', 'd']
  c.send({ id: 'a', action: 'slow.one', data: { ms: 60, tag: 'a' } })
  c.send({ id: 'b', action: 'bad.sync' })
  c.send({ id: 'c', action: 'slow.one', data: { ms: 0, tag: 'c' } })
  c.send({ id: 'd', action: 'bad.reject' })
  const replies = []
  for (let i = 0; i < 4; i++) replies.push(await c.next())
  t.same(replies.map((r) => r.id), ids, 'replies in arrival order')
  t.same(events, ['start a', 'end a', 'start c', 'end c'], 'one handler at a time')
  t.match(replies[1], { ok: false, error: { code: 'server_error' } })
  t.match(replies[3], { ok: false, error: { code: 'server_error' } })

  c.send({ action: 'bad.later' })
  t.match(await c.next(), { id: null, ok: false, error: { code: 'server_error' } }, 'an id-less failure still answers, with id null')
  t.match(await c.request('slow.one', { ms: 0, tag: 'e' }), { ok: true, data: { tag: 'e' } }, 'the next message still works')
})

t.test('groups: join in a handler, broadcast excluding the sender, left on disconnect', async (t) => {
  const app = await build(t)
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws',
      authenticate: [verifyJwt],
      actions: {
        'room.join': action({
          request: Type.Object({ room: Type.String({ pattern: '^[a-z]{1,16}$' }) }),
          handler: async (msg, conn) => { await conn.join(`room:${msg.data.room}`); return { groups: [...conn.groups] } }
        }),
        'room.say': action({
          request: Type.Object({ room: Type.String({ pattern: '^[a-z]{1,16}$' }), text: Type.String() }),
          async handler (msg, conn) {
            await this.wsx.broadcast(`room:${msg.data.room}`, 'room.message', { user: conn.user.sub, text: msg.data.text }, { exclude: conn })
            return { sent: true }
          }
        })
      }
    })
  })
  const [a, b, c, outsider] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map(async (sub) => {
    const client = await connect(app, '/ws', { token: tokenFor(app, sub) })
    t.teardown(() => client.close())
    await client.next('socket.authorized')
    return client
  })) as [TestClient, TestClient, TestClient, TestClient]
  for (const client of [a, b, c]) t.match(await client.request('room.join', { room: 'lobby' }), { ok: true, data: { groups: ['room:lobby'] } })
  t.same(await app.wsx.presence('room:lobby'), [{ user: 'alice', connections: 1 }, { user: 'bob', connections: 1 }, { user: 'carol', connections: 1 }])

  t.match(await a.request('room.say', { room: 'lobby', text: 'hi' }), { ok: true })
  const expected = { action: 'room.message', data: { user: 'alice', text: 'hi' } }
  t.strictSame(await b.next('room.message'), expected)
  t.strictSame(await c.next('room.message'), expected)
  t.match(await a.request('socket.ping'), { ok: true })
  t.match(await outsider.request('socket.ping'), { ok: true })
  t.notOk(a.frames.some((f) => f.action === 'room.message'), 'the sender is excluded')
  t.notOk(outsider.frames.some((f) => f.action === 'room.message'), 'non-members get nothing')

  await b.close()
  await eventually(() => app.wsx.presence('room:lobby'), (members) => members.length === 2, { what: 'bob to leave the group' })
  t.same(await app.wsx.presence('room:lobby'), [{ user: 'alice', connections: 1 }, { user: 'carol', connections: 1 }], 'bob left the group on disconnect')
  await app.wsx.broadcast('room:lobby', 'room.message', { user: 'server', text: 'bye' })
  t.strictSame(await a.next('room.message'), { action: 'room.message', data: { user: 'server', text: 'bye' } }, 'app broadcasts reach every member')
  t.strictSame(await c.next('room.message'), { action: 'room.message', data: { user: 'server', text: 'bye' } })
})
