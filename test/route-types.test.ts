// The runtime side of the typed route API: `actions: (action, route) => ...` and
// `channels: (channel) => ...` factories, the route handle's sends, `defineRoute()` sends
// bound at registration, TypeBox 1.x schemas next to @sinclair/typebox 0.34, schemas from
// neither refused at boot, and the typed client building its URL from params and query.
import t from 'tap'
import { WebSocket } from 'ws'
import { Type as Type1 } from 'typebox'
import { build, tokenFor, verifyJwt } from './helpers/build.js'
import { connect } from '../testing/index.js'
import { createClient } from '../client/index.js'
import { Type, defineRoute } from '../index.js'

t.test('factories: actions see typed params and query, route.broadcast and the handle reach members', async (t) => {
  const app = await build(t, { wsx: { connectionRateLimit: false } })
  const chat = app.wsx.route({
    url: '/ws/chat/:room',
    schema: { params: Type.Object({ room: Type.String() }), querystring: Type.Object({ n: Type.Optional(Type.Integer()) }) },
    authenticate: [verifyJwt],
    events: { 'chat.message': Type.Object({ room: Type.String(), text: Type.String() }) },
    groups: (conn) => `room:${conn.params.room}`,
    channels: (channel) => ({
      topic: channel({
        params: Type.Object({ topic: Type.String() }),
        authorize: (params, conn) => params.topic === conn.params.room,
        group: (params) => `topic:${params.topic}`
      })
    }),
    actions: (action, route) => ({
      'chat.send': action({
        request: Type.Object({ text: Type.String() }),
        handler: async (msg, conn) => {
          await route.broadcast(`room:${conn.params.room}`, 'chat.message', { room: conn.params.room, text: msg.data.text })
          return { room: conn.params.room, n: conn.query.n ?? null }
        }
      })
    })
  })
  await app.ready()
  const alice = await connect(app, '/ws/chat/general?n=7', { token: tokenFor(app, 'alice') })
  const bob = await connect(app, '/ws/chat/general', { token: tokenFor(app, 'bob') })
  await alice.next('socket.authorized')
  await bob.next('socket.authorized')

  t.match(await alice.request('chat.send', { text: 'hi' }), { ok: true, data: { room: 'general', n: 7 } }, 'params and the coerced query reach the handler')
  t.match(await bob.next('chat.message'), { data: { room: 'general', text: 'hi' } }, 'route.broadcast inside a handler')

  t.match(await bob.request('channel.subscribe', { channel: 'topic', params: { topic: 'other' } }), { ok: false, error: { code: 'permission_denied' } }, 'the channel factory authorize sees conn.params')
  t.match(await bob.request('channel.subscribe', { channel: 'topic', params: { topic: 'general' } }), { ok: true })

  await chat.broadcast('room:general', 'chat.message', { room: 'general', text: 'from the handle' })
  t.match(await bob.next('chat.message'), { data: { text: 'from the handle' } }, 'the route handle broadcasts')
  t.equal(await chat.sendToUser('bob', 'chat.message', { room: 'general', text: 'direct' }), 1, 'the handle pushes to a user')
  t.match(await bob.next('chat.message'), { data: { text: 'direct' } })
  t.same(Object.keys(chat).includes('broadcast'), false, 'the sends are not enumerable: the handle spreads as options')
  t.throws(() => chat.broadcast('room:general', 'chat.message', { room: 'general', text: 1 } as never), { code: 'WSX_ERR_EVENT_INVALID' }, 'the handle checks payloads like app.wsx does')
  await alice.close()
  await bob.close()
})

t.test('defineRoute(): the route argument sends once the route is registered', async (t) => {
  let sends: { broadcast: (...a: never[]) => Promise<void> } | undefined
  const def = defineRoute({
    url: '/ws/notes',
    authenticate: [verifyJwt],
    events: { 'note.added': Type.Object({ id: Type.Integer() }) },
    actions: (action, route) => {
      sends = route
      return {
        'note.add': action({
          handler: async (_msg, conn) => {
            await conn.join('notes')
            await route.broadcast('notes', 'note.added', { id: 1 })
            return { ok: true }
          }
        })
      }
    }
  })
  t.equal(typeof def.actions['note.add']?.handler, 'function', 'the factory ran: actions are a plain map')
  t.throws(() => sends!.broadcast(), { code: 'WSX_ERR_NOT_READY' }, 'before registration the sends say so')
  const app = await build(t)
  // a spread copy (as apps do to adjust an option) still binds the route's sends
  app.wsx.route({ ...def, summary: 'notes' })
  await app.ready()
  const c = await connect(app, '/ws/notes', { token: tokenFor(app, 'carol') })
  await c.next('socket.authorized')
  t.match(await c.request('note.add'), { ok: true })
  t.match(await c.next('note.added'), { data: { id: 1 } }, 'bound to the app the route was registered on')
  await c.close()
})

t.test('TypeBox 1.x schemas: request, response, params and events validated like 0.34 ones', async (t) => {
  const app = await build(t, { wsx: { connectionRateLimit: false } })
  app.wsx.route({
    url: '/ws/items/:shelf',
    schema: { params: Type1.Object({ shelf: Type1.Integer({ minimum: 1 }) }) },
    authenticate: [verifyJwt],
    events: { 'item.added': Type1.Object({ name: Type1.String() }) },
    actions: (action) => ({
      'item.add': action({
        request: Type1.Object({ name: Type1.String({ minLength: 1 }), tags: Type1.Optional(Type1.Array(Type1.String())) }, { additionalProperties: false }),
        response: Type1.Object({ shelf: Type1.Integer(), name: Type1.String() }),
        handler: async (msg, conn) => {
          conn.send('item.added', { name: msg.data.name })
          const reply = { shelf: conn.params.shelf, name: msg.data.name, secret: 'dropped by the serializer' }
          return reply
        }
      }),
      'item.bad': action({
        response: Type1.Object({ n: Type1.Integer() }),
        handler: async () => JSON.parse('{"n":"not a number"}')
      })
    })
  })
  await app.ready()
  const c = await connect(app, '/ws/items/3', { token: tokenFor(app, 'dave') })
  await c.next('socket.authorized')
  t.same((await c.request('item.add', { name: 'lamp' })).data, { shelf: 3, name: 'lamp' }, 'params coerced, response serialized from the 1.x schema')
  t.match(await c.next('item.added'), { data: { name: 'lamp' } }, 'a 1.x event schema checks conn.send')
  t.match(await c.request('item.add', { name: '', extra: 1 }), { ok: false, error: { code: 'validation_error', fields: { name: [String], extra: ['Unknown field.'] } } })
  t.match(await c.request('item.bad'), { ok: false, error: { code: 'server_error' } }, 'a reply breaking a 1.x response schema is a server_error')
  const refused = await connect(app, '/ws/items/0', { token: tokenFor(app, 'dave') }).then(() => null, (err: unknown) => err)
  t.match(refused, { statusCode: 400 }, 'the 1.x params schema is checked at the upgrade')
  await c.close()
})

t.test('a schema from neither TypeBox line fails at boot, naming both', async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['request', { actions: { 'a.b': { request: { type: 'object' }, handler: () => null } } }],
    ['params', { schema: { params: { type: 'object', properties: { room: { type: 'string' } } } }, actions: {} }],
    ['event', { events: { 'x.y': { type: 'string' } }, actions: {} }]
  ]
  for (const [part, opts] of cases) {
    const app = await build(t)
    const err = await (async () => { app.wsx.route({ url: '/ws', authenticate: [verifyJwt], ...opts } as never) })().catch((e: unknown) => e)
    t.match(err, { code: 'WSX_ERR_SCHEMA_NOT_TYPEBOX' }, `a plain JSON Schema as ${part}`)
    t.match((err as Error).message, /@sinclair\/typebox 0\.34.*typebox 1\.x/, `the ${part} error names both TypeBox lines`)
  }
})

t.test('the typed client builds its URL from params and query', async (t) => {
  const app = await build(t, { wsx: { connectionRateLimit: false, origins: '*' } })
  const rooms = app.wsx.route({
    url: '/ws/rooms/:room',
    schema: { params: Type.Object({ room: Type.String() }), querystring: Type.Object({ lang: Type.String() }) },
    authenticate: [verifyJwt],
    actions: (action) => ({ 'room.where': action({ handler: async (_msg, conn) => ({ room: conn.params.room, lang: conn.query.lang }) }) })
  })
  t.equal(rooms.url, '/ws/rooms/:room', 'the handle carries the options the client is typed from')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const client = createClient<typeof rooms>(`ws://127.0.0.1:${port}/ws/rooms/:room`, {
    WebSocket,
    reconnect: false,
    token: tokenFor(app, 'erin'),
    params: { room: 'a b/c' },
    query: { lang: 'fr' }
  })
  t.teardown(() => client.close())
  t.equal(client.url, `ws://127.0.0.1:${port}/ws/rooms/a%20b%2Fc?lang=fr`, 'params URI-encoded into :room, query appended')
  t.same(await client.request('room.where'), { room: 'a b/c', lang: 'fr' }, 'the server sees them decoded')
  t.throws(() => createClient('ws://127.0.0.1/ws/rooms/:room', { WebSocket, reconnect: false }), TypeError, 'a :param without a value is refused')
})
