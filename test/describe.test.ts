// app.wsx.describeRoutes(): the public, plain description of every route, which AsyncAPI
// and the playground read.
import t from 'tap'
import { Type, action, defineChannel, hasRole } from '../index.js'
import { build, verifyJwt } from './helpers/build.js'

async function app (t: Parameters<typeof build>[0]) {
  const a = await build(t)
  await a.register(async (scope) => {
    scope.wsx.route({
      url: '/ws/room/:id',
      summary: 'Rooms',
      description: 'One room per id',
      msgpack: true,
      schema: {
        params: Type.Object({ id: Type.String({ pattern: '^[0-9]+$' }) }),
        querystring: Type.Object({ lang: Type.Optional(Type.String()) })
      },
      authenticate: [verifyJwt],
      handshake: { attempts: 3 },
      groups: (conn) => `room:${conn.params.id}`,
      events: { 'room.note': Type.Object({ text: Type.String() }) },
      channels: {
        feed: defineChannel({
          params: Type.Object({ topic: Type.String() }),
          events: { 'feed.item': Type.Object({ n: Type.Integer() }) },
          history: { size: 10, ttl: '1 minute' },
          summary: 'a feed'
        })
      },
      actions: {
        'room.say': action({
          summary: 'Say something',
          description: 'Sends a note to the room',
          request: Type.Object({ text: Type.String() }),
          response: Type.Object({ ok: Type.Boolean() }),
          permissions: [hasRole('admin'), async () => true],
          throttle: [{ max: 2, timeWindow: '1 second' }, { max: 5, key: 'ip', name: 'per-ip' }, { max: 9, key: () => 'k' }],
          handler: async () => ({ ok: true })
        }),
        'room.ping': action({ public: true, handler: async () => ({}) })
      }
    })
  }, { prefix: '/api' })
  a.wsx.route({ url: '/ws/open', actions: { 'open.hello': action({ public: true, handler: async () => ({}) }) } })
  await a.ready()
  return a
}

t.test('describeRoutes(): every declared fact of every route, as plain JSON', async (t) => {
  const a = await app(t)
  const routes = a.wsx.describeRoutes()
  t.same(JSON.parse(JSON.stringify(routes)), routes, 'plain data: a JSON round trip changes nothing')
  t.strictSame(routes[0], {
    url: '/api/ws/room/:id',
    summary: 'Rooms',
    description: 'One room per id',
    params: [{ name: 'id', schema: { type: 'string', pattern: '^[0-9]+$' } }],
    querystring: { type: 'object', properties: { lang: { type: 'string' } } },
    auth: { upgrade: true, handshake: { attempts: 3, lockSeconds: 20, timeoutSeconds: 20 } },
    msgpack: true,
    groups: true,
    actions: [
      {
        name: 'room.say',
        public: false,
        summary: 'Say something',
        description: 'Sends a note to the room',
        request: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
        response: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
        throttles: [
          { bucket: 'room.say', max: 2, windowMs: 1000, key: 'user' },
          { bucket: 'per-ip', max: 5, windowMs: 60_000, key: 'ip' },
          { bucket: 'room.say#2', max: 9, windowMs: 60_000, key: 'custom' }
        ],
        permissions: ['hasRolePermission', 'anonymous']
      },
      { name: 'room.ping', public: true, request: null, response: null, throttles: [], permissions: [] }
    ],
    builtins: ['socket.ping', 'socket.authorize', 'group.recover', 'channel.subscribe', 'channel.unsubscribe'],
    events: { 'room.note': { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } },
    channels: [{
      name: 'feed',
      params: { type: 'object', properties: { topic: { type: 'string' } }, required: ['topic'] },
      events: { 'feed.item': { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } },
      history: { size: 10, ttlMs: 60_000, maxReplay: 10 },
      summary: 'a feed'
    }]
  })
  t.strictSame(routes[1], {
    url: '/ws/open',
    params: [],
    querystring: null,
    auth: { upgrade: false, handshake: null },
    msgpack: false,
    groups: false,
    actions: [{ name: 'open.hello', public: true, request: null, response: null, throttles: [], permissions: [] }],
    builtins: ['socket.ping', 'group.recover'],
    events: {},
    channels: []
  })
})

t.test('each call is a fresh copy; the deprecated routes getter still lists the compiled routes', async (t) => {
  const a = await app(t)
  const first = a.wsx.describeRoutes()
  first[0]!.actions[0]!.request!.type = 'changed'
  t.equal(a.wsx.describeRoutes()[0]!.actions[0]!.request!.type, 'object', 'a caller cannot change what the next one reads')
  t.same(a.wsx.routes.map((r) => r.url), ['/api/ws/room/:id', '/ws/open'])
})

t.test('the AsyncAPI document reads the description', async (t) => {
  const a = await app(t)
  const doc = a.wsx.asyncapi() as Record<string, any>
  const channel = doc.channels.api_ws_room_id
  t.same(channel['x-wsx-auth'], { upgrade: true, handshake: { attempts: 3, lock_seconds: 20, timeout_seconds: 20 }, public_actions: ['room.ping'] })
  t.same(channel.parameters.id, { description: 'path parameter matching ^[0-9]+$', 'x-wsx-schema': { type: 'string', pattern: '^[0-9]+$' } })
  t.same(doc.operations['api_ws_room_id.room.say']['x-wsx-throttle'].map((x: { key: string }) => x.key), ['user', 'ip', 'custom'])
})
