// Two app instances, each handed its Redis in a given form, must act as one server:
// one throttle, one handshake lock, one presence, broadcasts crossing. Used by the
// client-form, Cluster and Sentinel tests.
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Type, action } from '../../index.js'
import { connect, type TestClient } from '../../testing/index.js'
import type { WsxPluginOptions } from '../../types/options.js'
import { build, tokenFor, verifyJwt, type BuildOptions } from './build.js'
import { eventually } from './eventually.js'

/** An app with throttled, presence and broadcast actions on `/ws/:room`. */
export async function sharedApp (t: Test, redis: WsxPluginOptions['redis'], namespace: string, extra: WsxPluginOptions = {}, before?: BuildOptions['before'], fastify?: BuildOptions['fastify']): Promise<FastifyInstance> {
  const app = await build(t, { wsx: { redis, namespace, handshake: { attempts: 2, lockSeconds: 5 }, ...extra }, ...(before && { before }), ...(fastify && { fastify }) })
  // one room keeps history (Redis Streams), to check its keys and scripts on every topology
  app.wsx.group('room:hist', { history: { size: 100, ttl: '5m' } })
  app.wsx.route({
    url: '/ws/:room',
    authenticate: [verifyJwt],
    groups: (conn) => `room:${String(conn.params.room)}`,
    channels: { feed: { params: Type.Object({ topic: Type.String({ pattern: '^[a-z]+$' }) }) } },
    actions: {
      'x.send': action({ throttle: { max: 2, timeWindow: 60_000 }, handler: async () => ({}) }),
      'chat.send': action({
        request: Type.Object({ text: Type.String() }),
        async handler (msg, conn) {
          await this.wsx.broadcast(`room:${String(conn.params.room)}`, 'chat.message', { user: conn.user.sub, text: msg.data.text })
          return { sent: true }
        }
      }),
      'room.presence': action({ async handler (_msg, conn) { return this.wsx.presence(`room:${String(conn.params.room)}`) } }),
      'room.kick': action({
        request: Type.Object({ user: Type.String() }),
        async handler (msg) { return { closed: await this.wsx.disconnectUser(msg.data.user) } }
      })
    }
  })
  await app.ready()
  return app
}

export async function authed (app: FastifyInstance, room: string, user: string): Promise<TestClient> {
  const c = await connect(app, `/ws/${room}`, { token: tokenFor(app, user) })
  await c.next('socket.authorized')
  return c
}

/**
 * The shared-state checks on two apps built by `sharedApp` with one namespace: a per-user
 * throttle of max 2 across both answers ok, ok, throttled, throttled; a handshake lock
 * taken on one holds on the other; presence and broadcasts cross; a user push and a kick
 * reach the other instance and count its connections.
 */
export async function checkSharedState (t: Test, a: FastifyInstance, b: FastifyInstance, room = 'general'): Promise<void> {
  const carolA = await authed(a, room, 'carol')
  const carolB = await authed(b, room, 'carol')
  t.match(await carolA.request('x.send'), { ok: true }, 'first send, instance A')
  t.match(await carolB.request('x.send'), { ok: true }, 'second send, instance B')
  t.match(await carolA.request('x.send'), { ok: false, error: { code: 'throttled' } }, 'third send, A: throttled')
  t.match(await carolB.request('x.send'), { ok: false, error: { code: 'throttled' } }, 'fourth send, B: throttled')
  await carolA.close()
  await carolB.close()

  const alice = await authed(a, room, 'alice')
  const bob = await authed(b, room, 'bob')
  const expected = [{ user: 'alice', connections: 1 }, { user: 'bob', connections: 1 }]
  const both = (f: { data?: unknown }) => JSON.stringify(f.data) === JSON.stringify(expected)
  t.strictSame((await eventually(() => alice.request('room.presence'), both, { what: 'presence from A', timeout: 5000, interval: 50 })).data, expected, 'presence from A lists both')
  t.strictSame((await eventually(() => bob.request('room.presence'), both, { what: 'presence from B', timeout: 5000, interval: 50 })).data, expected, 'presence from B lists both')

  // both instances subscribed to the room: a broadcast from A reaches bob on B
  const text = `hello ${Date.now()}`
  const reached = await eventually(async () => {
    await alice.request('chat.send', { text })
    try {
      return await bob.next((f) => f.action === 'chat.message' && (f.data as { text: string }).text === text, 500)
    } catch {
      return null
    }
  }, (f) => f !== null, { what: 'a broadcast from A on B', timeout: 5000, interval: 50 })
  t.match(reached, { data: { user: 'alice', text } }, 'a broadcast on A reaches B')

  // every instance answers with how many of the user's connections it reached: A none, B one
  t.equal(await a.wsx.sendToUser('bob', 'notice', { n: 1 }), 1, 'user push from A counts bob on B')
  t.match(await bob.next('notice'), { data: { n: 1 } }, 'user push from A reaches bob on B')
  t.match(await alice.request('channel.subscribe', { channel: 'feed', params: { topic: 'news' } }), { ok: true })
  const feed = await eventually(async () => {
    await b.wsx.publish('feed', { topic: 'news' }, 'feed.item', { n: 2 })
    try {
      return await alice.next('feed.item', 500)
    } catch {
      return null
    }
  }, (f) => f !== null, { what: 'a channel event from B on A', timeout: 5000, interval: 50 })
  t.match(feed, { channel: 'feed', data: { n: 2 } }, 'a channel event published on B reaches A')

  const mallory = await authed(b, room, 'mallory')
  t.strictSame((await alice.request('room.kick', { user: 'mallory' })).data, { closed: 1 }, 'a kick on A counts mallory on B')
  t.equal((await mallory.closed()).code, 4403, 'a kick on A closes the socket on B')

  // the lock key is the client address: both instances see 127.0.0.1
  const c1 = await connect(a, `/ws/${room}`)
  await c1.next('socket.handshake')
  t.match(await c1.authorize('bad'), { ok: false, error: { code: 'authentication_failed', attempts_left: 1 } })
  t.match(await c1.authorize('bad'), { ok: false, error: { code: 'authentication_failed', attempts_left: 0 } })
  t.equal((await c1.closed()).code, 4408)
  const c2 = await connect(b, `/ws/${room}`)
  await c2.next('socket.handshake')
  t.match(await c2.authorize(tokenFor(b, 'alice')), { ok: false, error: { code: 'locked' } }, 'the lock taken on A holds on B')
  await c2.close()
  await alice.close()
  await bob.close()
}
