// The demo (README.md#asyncapi-playground-and-the-demo-page): a chat on fastify-wsx, the README quickstart
// grown up, the benchmark target, and the app outside clients are tested against.
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import wsx, { Type, action, defineChannel, defineRoute, hasRole, isAuthenticated, WsxError } from '../../index.js'
import { readSettings, type DemoSettings } from './settings.js'
import { registerPages } from './pages.js'

// The user is the JWT payload: `sub` and a `role` claim ('admin' | 'user'). No global
// type augmentation here, so the demo never changes the types other code sees.
function roleOf (user: unknown): string {
  const role = (user as { role?: unknown } | null)?.role
  return typeof role === 'string' ? role : 'user'
}

const Room = Type.String({ pattern: '^[a-z0-9-]{1,32}$' })
const ChatMessage = Type.Object({ user: Type.String(), text: Type.String(), room: Type.String() })
const BenchData = Type.Object({ p: Type.String({ maxLength: 65536 }), bseq: Type.Optional(Type.Integer()) })

/** The app's HTTP auth strategy, reused unchanged by the WebSocket routes. */
async function authenticate (request: FastifyRequest): Promise<void> {
  await request.jwtVerify()
}

/** The chat route, declared once so the typed client can import its type. */
export const chatRoute = defineRoute({
  url: '/ws/chat/:room',
  summary: 'A chat room',
  schema: { params: Type.Object({ room: Room }) },
  authenticate: [authenticate],
  groups: (conn) => `room:${conn.params.room}`,
  events: { 'chat.message': ChatMessage },
  channels: {
    room: defineChannel({
      params: Type.Object({ room: Room }),
      summary: 'Messages of a room, without joining it',
      events: { 'chat.message': ChatMessage },
      // rooms starting with private- are for admins only
      authorize: (params, conn) => !params.room.startsWith('private-') || roleOf(conn.user) === 'admin',
      group: (params) => `channel.room:${params.room}`,
      // subscribers recover what they missed, like the room's members
      history: { size: 100, ttl: '10m' }
    })
  },
  // the route's own action(): conn.params.room is a string, route.broadcast/publish take its events
  actions: (action, route) => ({
    'public.ping': action({
      public: true,
      summary: 'Liveness check, allowed before authentication',
      response: Type.Object({ pong: Type.Boolean() }),
      handler: async () => ({ pong: true })
    }),
    'chat.whoami': action({
      summary: 'Who this connection is',
      response: Type.Object({ user: Type.String(), role: Type.String() }),
      handler: async (_msg, conn) => ({ user: conn.user.sub, role: roleOf(conn.user) })
    }),
    'chat.send': action({
      summary: 'Send a message to the room',
      request: Type.Object({ text: Type.String({ minLength: 1, maxLength: 4000 }) }),
      response: Type.Object({ user: Type.String(), text: Type.String() }),
      // replaced per app by buildDemo with the configured limit
      throttle: { max: 5, timeWindow: 10_000 },
      async handler (msg, conn) {
        const room = conn.params.room
        const event = { user: conn.user.sub, text: msg.data.text, room }
        await Promise.all([
          route.broadcast(`room:${room}`, 'chat.message', event),
          route.publish('room', { room }, 'chat.message', event)
        ])
        return { user: event.user, text: event.text }
      }
    }),
    'admin.stats': action({
      summary: 'Connections on this process (admins)',
      permissions: [hasRole('admin')],
      response: Type.Object({ connections: Type.Integer() }),
      handler: async function () { return { connections: this.wsx.connections.size } }
    }),
    'room.kick': action({
      summary: "Close a user's sockets on every instance with 4403 (admins)",
      permissions: [hasRole('admin')],
      request: Type.Object({ user: Type.String({ minLength: 1, maxLength: 64 }) }),
      response: Type.Object({ closed: Type.Integer() }),
      handler: async function (msg) { return { closed: await this.wsx.disconnectUser(msg.data.user) } }
    }),
    'room.presence': action({
      summary: 'Users in this room, across instances',
      response: Type.Object({ users: Type.Array(Type.String()) }),
      handler: async function (_msg, conn) {
        const entries = await this.wsx.presence(`room:${conn.params.room}`)
        return { users: entries.map((e) => e.user) }
      }
    })
  })
})

/** The benchmark target: every stage of the pipeline runs on every message. */
export const benchRoute = defineRoute({
  url: '/ws/bench',
  summary: 'Benchmark target',
  authenticate: [authenticate],
  handshake: false,
  messageRateLimit: false,
  // JSON and MessagePack clients alike: `npm run bench` compares the two
  msgpack: true,
  groups: () => 'bench',
  events: { 'bench.tick': BenchData },
  actions: {
    'bench.echo': action({
      request: BenchData,
      response: BenchData,
      permissions: [isAuthenticated],
      throttle: { max: 1_000_000, timeWindow: '1 minute' },
      handler: async (msg) => msg.data
    }),
    'bench.broadcast': action({
      request: BenchData,
      response: Type.Object({ sent: Type.Boolean() }),
      permissions: [isAuthenticated],
      throttle: { max: 1_000_000, timeWindow: '1 minute' },
      async handler (msg) {
        await this.wsx.broadcast('bench', 'bench.tick', msg.data)
        return { sent: true }
      }
    })
  }
})

/**
 * A person at a terminal reads pino-pretty's lines; anything else (a pipe, a file, a log
 * collector) gets pino's JSON, one object per line.
 */
export function demoLogger (isTTY = process.stdout.isTTY === true): FastifyServerOptions['logger'] {
  const level = process.env.LOG_LEVEL ?? 'info'
  if (!isTTY) return { level }
  return { level, transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } }
}

export async function buildDemo (overrides: Partial<DemoSettings> = {}, opts: { logger?: boolean | object } = {}): Promise<FastifyInstance> {
  const s = { ...readSettings(), ...overrides }
  const app = Fastify({ logger: opts.logger ?? demoLogger() })
  if (s.secretIsDefault) app.log.warn('WSX_DEMO_SECRET is not set: using a dev-only secret. Never do this in production.')

  if (s.redisUrl !== undefined && s.redisCluster !== undefined) throw new Error('set WSX_DEMO_REDIS_URL or WSX_DEMO_REDIS_CLUSTER, not both')
  // a Cluster is passed as a client (README.md#redis-cluster-and-sentinel): the plugin
  // duplicates it for its own connections, and the demo closes the one it made
  // (loaded only then, like the plugin loads ioredis only with `redis`)
  const cluster = s.redisCluster === undefined ? undefined : new (await import('ioredis')).Cluster(s.redisCluster, { lazyConnect: true })
  if (cluster !== undefined) app.addHook('onClose', async () => { cluster.disconnect() })
  const redis = s.redisUrl ?? cluster

  await app.register(fastifyJwt, { secret: s.secret, sign: { algorithm: 'HS256', expiresIn: s.tokenTtl }, verify: { algorithms: ['HS256'], requiredClaims: ['exp'] } })
  await app.register(wsx, {
    origins: s.origins,
    maxPayload: 128 * 1024,
    // who is in a room (room.presence); the benchmark group is not worth tracking
    presence: { groups: (group) => group.startsWith('room:') },
    connectionRateLimit: { max: s.connectLimit, timeWindow: s.connectWindowSeconds * 1000 },
    maxConnectionsPerIp: s.maxConnectionsPerIp,
    maxConnectionsPerUser: s.maxConnectionsPerUser,
    maxConnections: s.maxConnections,
    heartbeatMs: s.heartbeatMs,
    handshake: {
      attempts: s.authAttempts,
      lockSeconds: s.authLockSeconds,
      timeoutSeconds: s.authTimeoutSeconds,
      expiryGraceSeconds: s.expiryGraceSeconds
    },
    ...(redis !== undefined && { redis })
  })

  app.post('/login', {
    schema: { body: Type.Object({ username: Type.String({ pattern: '^[a-z0-9_]{1,32}$' }) }, { additionalProperties: false }) }
  }, async (request) => {
    const { username } = request.body as { username: string }
    return { token: app.jwt.sign({ sub: username, role: username === 'admin' ? 'admin' : 'user' }) }
  })
  app.get('/health', async () => ({ ok: true }))

  // every room keeps its last 100 messages: a page shows them on join or reload, and a tab
  // that lost its connection for a while gets what it missed (the typed client recovers)
  app.wsx.group('room:*', { history: { size: 100, ttl: '10m' } })
  // the benchmark's broadcast-with-history scenario (off unless WSX_DEMO_BENCH_HISTORY is set)
  if (s.benchHistory > 0) app.wsx.group('bench', { history: { size: s.benchHistory, ttl: '10m' } })
  const sendAction = chatRoute.actions['chat.send']
  app.wsx.route({
    ...chatRoute,
    actions: { ...chatRoute.actions, 'chat.send': { ...sendAction, throttle: { max: s.sendLimit, timeWindow: s.sendWindowSeconds * 1000 } } as typeof sendAction }
  })
  app.wsx.route(benchRoute)
  app.wsx.socket('/ws/echo', async (socket) => {
    for await (const message of socket) {
      if (message.type === 'text') socket.sendText(`Echo: ${message.data}`)
      else socket.sendBytes(message.data)
    }
  })
  await registerPages(app)
  return app
}

export { WsxError }
