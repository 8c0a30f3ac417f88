// Compile-time checks of the server's public types (`npx tsc -p tsconfig.json` is the real
// test: each `@ts-expect-error` fails the type check when its line stops being an error).
import t from 'tap'
import Fastify from 'fastify'
import wsx, { Type, action, defineChannel, defineRoute, type SomeConnection } from '../../index.js'

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assertType<T extends true> (_ok?: T): void {}

async function checks (): Promise<void> {
  const app = Fastify()
  await app.register(wsx)

  const send = action({
    request: Type.Object({ text: Type.String() }),
    response: Type.Object({ user: Type.String(), text: Type.String() }),
    handler: async (msg, conn) => {
      assertType<Equals<typeof msg.data, { text: string }>>()
      // protected actions always have a user
      assertType<Equals<typeof conn.user.sub, string>>()
      return { user: conn.user.sub, text: msg.data.text }
    }
  })

  action({
    public: true,
    handler: async (_msg, conn) => {
      // public actions may run before authentication: the user may be null
      // @ts-expect-error conn.user is possibly null
      return { sub: conn.user.sub }
    }
  })

  action({
    request: Type.Object({ n: Type.Number() }),
    // @ts-expect-error the field does not exist in the schema
    handler: async (msg) => ({ n: msg.data.missing })
  })

  action({
    response: Type.Object({ n: Type.String() }),
    // @ts-expect-error the reply must match the response schema
    handler: async () => ({ n: 1 })
  })

  const room = defineChannel({
    params: Type.Object({ room: Type.String() }),
    authorize: (params) => {
      assertType<Equals<typeof params, { room: string }>>()
      return true
    }
  })

  const route = defineRoute({ url: '/ws', authenticate: [async () => {}], actions: { 'chat.send': send }, channels: { room } })
  const declared = app.wsx.route(route)
  // the handle keeps the route's options for the typed client
  assertType<Equals<typeof declared.actions, typeof route.actions>>()
  use(declared)

  await app.wsx.broadcast('room:general', 'chat.message', { any: 'data' })
  const conns: ReadonlySet<SomeConnection> = app.wsx.connections
  // @ts-expect-error route options are checked
  app.wsx.route({ url: '/x', actions: {}, nope: true })
  use(conns)

  // history: on groups and channels, typed options; the server reads it back
  app.wsx.group('room:*', { history: { size: 100, ttl: '5m', maxReplay: 50 } })
  // @ts-expect-error size is a number
  app.wsx.group('feed:*', { history: { size: '100', ttl: '5m' } })
  // @ts-expect-error ttl is required
  app.wsx.group('feed:*', { history: { size: 100 } })
  const withHistory = defineChannel({ params: Type.Object({ id: Type.String() }), history: { size: 10, ttl: 60_000 } })
  use(withHistory)
  const snapshot = await app.wsx.history('room:general', { last: 10 })
  const offsets: number[] = snapshot.events.map((e) => e.offset)
  const epoch: string = snapshot.epoch
  use(offsets, epoch)
}

/** Marks values as used (the checks are their types). */
function use (..._values: unknown[]): void {}

t.pass('the checks above compile')
use(checks)
