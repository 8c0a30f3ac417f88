// Routes declared in encapsulated plugins: the scope's prefix, its decorators as `this`
// in handlers, permissions, loadObject and route hooks, its hooks at the upgrade; sibling
// scopes unaffected.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, verifyJwt, tokenFor } from './helpers/build.js'
import { eventually } from './helpers/eventually.js'
import { connect, type TestClient } from '../testing/index.js'
import { action, Type, type WsxHook } from '../index.js'

/** The HTTP status a refused upgrade answered, or 0 when it was accepted. */
async function statusOf (p: Promise<TestClient>): Promise<number> {
  return p.then((c) => { c.ws.terminate(); return 0 }, (err: { statusCode?: number }) => err.statusCode ?? -1)
}

declare module 'fastify' {
  interface FastifyInstance {
    db?: { name: string, rooms: Record<string, { owner: string }> }
  }
}

t.test('a prefixed scope: decorators as `this`, hooks at the upgrade, siblings unaffected', async (t) => {
  const app = await build(t)
  const hookUrls: string[] = []
  const thisSeen: Record<string, FastifyInstance> = {}
  const lifecycle: string[] = []

  app.register(async (scope) => {
    scope.decorate('db', { name: 'tenant-db', rooms: { r1: { owner: 'alice' } } })
    scope.addHook('onRequest', async (request, reply) => {
      hookUrls.push(request.url)
      if (request.headers['x-tenant'] !== 'acme') return reply.code(403).send({ message: 'wrong tenant' })
    })
    scope.wsx.route({
      url: '/ws/:room',
      authenticate: [verifyJwt],
      schema: { params: Type.Object({ room: Type.String() }) },
      actions: (action) => ({
        'db.name': action({
          async handler (_msg, conn) {
            thisSeen.handler = this
            return { db: this.db?.name ?? null, url: conn.url, room: conn.params.room }
          }
        }),
        'room.edit': action({
          async loadObject (_msg, conn) {
            thisSeen.loadObject = this
            return this.db!.rooms[conn.params.room] ?? null
          },
          permissions: [function (msg, conn) {
            thisSeen.permission = this
            return msg.object?.owner === conn.user.sub
          }],
          preHandler: [async function (this: FastifyInstance) { thisSeen.preHandler = this }],
          handler: async (msg) => ({ object: msg.object })
        })
      }),
      onConnect (conn) { thisSeen.onConnect = this; lifecycle.push(`connect ${conn.url}`) },
      onAuthenticated (conn) { lifecycle.push(`authenticated ${conn.user.sub}`) },
      onDisconnect (_conn, code) { lifecycle.push(`disconnect ${code}`) }
    })
  }, { prefix: '/tenant' })

  app.register(async (sibling) => {
    sibling.wsx.route({
      url: '/ws/:room',
      authenticate: [verifyJwt],
      actions: { 'db.name': action({ async handler (_msg, conn) { return { db: this.db?.name ?? null, url: conn.url, hasDb: this.hasDecorator('db') } } }) }
    })
  }, { prefix: '/open' })

  await app.ready()
  t.same(app.wsx.routes.map((r) => r.url).sort(), ['/open/ws/:room', '/tenant/ws/:room'], 'full urls, prefix included')
  t.notOk(app.hasDecorator('db'), 'the decorator stays in its scope')

  const token = tokenFor(app, 'alice')
  t.equal(await statusOf(connect(app, '/tenant/ws/r1', { token })), 403, 'the scope hook refuses at the upgrade')
  t.same(hookUrls, ['/tenant/ws/r1'])

  const c = await connect(app, '/tenant/ws/r1', { token, headers: { 'x-tenant': 'acme' } })
  t.match(await c.next(), { action: 'socket.authorized' })
  t.strictSame((await c.request('db.name')).data, { db: 'tenant-db', url: '/tenant/ws/:room', room: 'r1' }, 'handlers see the scope\'s decorators')
  t.match(await c.request('room.edit'), { ok: true, data: { object: { owner: 'alice' } } })
  for (const where of ['handler', 'loadObject', 'permission', 'preHandler', 'onConnect']) {
    t.equal(thisSeen[where]?.db?.name, 'tenant-db', `\`this\` in ${where} is the encapsulated instance`)
  }
  await c.close()
  await eventually(() => lifecycle, (seen) => seen.length >= 3, { what: 'the three lifecycle hooks' })
  t.same(lifecycle, ['connect /tenant/ws/:room', 'authenticated alice', 'disconnect 1000'], 'route hooks run with the connection')

  const s = await connect(app, '/open/ws/r1', { token })
  t.teardown(() => s.close())
  t.match(await s.next(), { action: 'socket.authorized' }, 'the sibling scope has no tenant hook')
  t.strictSame((await s.request('db.name')).data, { db: null, url: '/open/ws/:room', hasDb: false }, 'nor its decorators')
  t.same(hookUrls, ['/tenant/ws/r1', '/tenant/ws/r1'], 'the tenant hook never ran for the sibling')
})

t.test('a strategy declared as a scope decorator is used unchanged', async (t) => {
  const app = await build(t)
  app.register(async (scope) => {
    scope.decorate('authenticate', async function (request: { jwtVerify: () => Promise<unknown> }) { await request.jwtVerify() })
    // Fastify's typed accessor: no cast needed to pass a decorator as a strategy
    const authenticate = scope.getDecorator<WsxHook>('authenticate')
    scope.wsx.route({
      url: '/ws',
      authenticate: [authenticate],
      actions: { 'who.ami': action({ handler: async (_msg, conn) => ({ sub: conn.user.sub }) }) }
    })
    // the very same function protects an HTTP route of the scope
    scope.get('/me', { onRequest: [authenticate] }, async (request) => ({ sub: (request.user as { sub: string }).sub }))
  }, { prefix: '/api' })
  const token = tokenFor(app, 'alice')
  const http = await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${token}` } })
  t.same(http.json(), { sub: 'alice' })
  t.equal((await app.inject({ url: '/api/me' })).statusCode, 401)

  t.equal(await statusOf(connect(app, '/api/ws', { token: 'bad' })), 401)
  const c = await connect(app, '/api/ws')
  t.teardown(() => c.close())
  t.match(await c.next(), { action: 'socket.handshake' })
  t.match(await c.authorize(token), { action: 'socket.authorized' })
  t.match(await c.request('who.ami'), { ok: true, data: { sub: 'alice' } })
})
