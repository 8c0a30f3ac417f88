// Type tests run by `npm run test:consumer` in a fresh strict app against the packed package
// (not by the project's own tsconfig). Each `@ts-expect-error` must stay an error: tsc
// reports an unused directive otherwise, and the job fails.
import Fastify, { type FastifyRequest } from 'fastify'
import wsx, { Type, action, defineRoute, isAuthenticated, type Permission, type WsxConnection, type WsxUserOf } from 'fastify-wsx'

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assertType<T extends true> (_ok?: T): void {}

const app = Fastify()
await app.register(wsx)
const authenticate = async (request: FastifyRequest): Promise<void> => { if (request.headers.authorization === undefined) throw new Error('no token') }

interface Room { id: string, members: string[] }
// a permission declared on its own: by default it checks an authenticated connection
const isMember: Permission<Room> = async (msg, conn) => msg.object.members.includes(conn.user.sub)

const chat = app.wsx.route({
  url: '/ws/chat/:room',
  schema: {
    params: Type.Object({ room: Type.String() }),
    querystring: Type.Object({ lang: Type.Optional(Type.String()), page: Type.Integer() })
  },
  authenticate: [authenticate],
  events: {
    'chat.message': Type.Object({ user: Type.String(), text: Type.String() }),
    'room.closed': Type.Object({ reason: Type.String() })
  },
  channels: (channel) => ({
    typing: channel({
      params: Type.Object({ room: Type.String() }),
      events: { 'room.typing': Type.Object({ user: Type.String() }) },
      authorize: (params, conn) => {
        assertType<Equals<typeof params, { room: string }>>()
        assertType<Equals<typeof conn.params, { room: string }>>()
        // @ts-expect-error wrong params: the route has no :id
        return conn.params.id === params.room
      }
    })
  }),
  groups: (conn) => `room:${conn.params.room}`,
  onAuthenticated: (conn) => { conn.send('room.closed', { reason: `${conn.user.sub} ${conn.query.lang ?? 'en'}` }) },
  onConnect: (conn) => {
    // @ts-expect-error the connection may not be authenticated yet: the user may be null
    return conn.user.sub
  },
  onDisconnect: (conn) => conn.user?.sub,
  actions: (action) => ({
    'chat.send': action({
      request: Type.Object({ text: Type.String() }),
      response: Type.Object({ user: Type.String(), text: Type.String() }),
      preHandler: [async (request) => {
        assertType<Equals<typeof request.params, { room: string }>>()
      }],
      permissions: [isAuthenticated, async (msg, conn) => conn.params.room !== 'locked' && msg.action === 'chat.send'],
      handler: async (msg, conn) => {
        assertType<Equals<typeof msg.data, { text: string }>>()
        assertType<Equals<typeof conn.params, { room: string }>>()
        assertType<Equals<typeof conn.query, { lang?: string, page: number }>>()
        assertType<Equals<typeof conn.user, WsxUserOf>>()
        const room: string = conn.params.room
        conn.send('chat.message', { user: conn.user.sub, text: msg.data.text })
        conn.send('room.typing', { user: conn.user.sub })
        // @ts-expect-error unknown event
        conn.send('chat.mesage', { user: 'a', text: 'b' })
        // @ts-expect-error wrong event payload
        conn.send('chat.message', { txt: 1 })
        // @ts-expect-error wrong params: not a number
        const n: number = conn.params.room
        // @ts-expect-error wrong field: not in the request schema
        msg.data.missing.toString()
        return { user: conn.user.sub, text: `${room}: ${msg.data.text}${String(n)}` }
      }
    }),
    'room.get': action({
      loadObject: async (_msg, conn): Promise<Room> => ({ id: conn.params.room, members: [conn.user.sub] }),
      permissions: [isMember],
      response: Type.Object({ id: Type.String() }),
      handler: async (msg) => ({ id: msg.object.id })
    }),
    'room.bad': action({
      response: Type.Object({ id: Type.String() }),
      // @ts-expect-error wrong reply shape
      handler: async () => ({ id: 1 })
    }),
    'room.peek': action({
      public: true,
      handler: async (msg, conn) => {
        assertType<Equals<typeof msg.data, unknown>>()
        // @ts-expect-error public actions may run before authentication: the user may be null
        return conn.user.sub
      }
    })
  })
})

// the route handle sends what the route declares
await chat.broadcast('room:general', 'chat.message', { user: 'a', text: 'hi' })
await chat.publish('typing', { room: 'general' }, 'room.typing', { user: 'a' })
const delivered: number = await chat.sendToUser('alice', 'room.closed', { reason: 'bye' })
// @ts-expect-error wrong event payload
await chat.broadcast('room:general', 'chat.message', { text: 123 })
// @ts-expect-error unknown event
await chat.sendToUser('alice', 'chat.mesage', { user: 'a', text: 'b' })
// @ts-expect-error wrong channel params
await chat.publish('typing', { board: 'x' }, 'room.typing', { user: 'a' })

// a plain object-literal action: msg.data is unknown, never any
defineRoute({
  url: '/ws/plain',
  authenticate: [authenticate],
  actions: {
    'plain.echo': {
      handler: async (msg) => {
        assertType<Equals<typeof msg.data, unknown>>()
        return { ok: true }
      }
    }
  }
})

// a standalone action without a request schema: msg.data is unknown
action({ handler: async (msg) => { assertType<Equals<typeof msg.data, unknown>>() } })

// a permission for public actions takes a connection whose user may be null
const allowAll: Permission<unknown, WsxConnection<WsxUserOf | null>> = async (_msg, conn) => conn.user === null || conn.authenticated
action({ public: true, permissions: [allowAll], handler: async () => null })
// @ts-expect-error a permission that reads conn.user.sub cannot guard a public action
action({ public: true, permissions: [isMember], handler: async () => null })

// a schema from neither TypeBox line is refused
// @ts-expect-error not a TypeBox schema
action({ request: { type: 'object' }, handler: async () => null })

export { delivered }
