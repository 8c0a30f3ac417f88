// Two Fastify instances on one Redis behave as one server (issue 4): broadcast, channel
// events, presence, user push and disconnect cross instances; a Redis outage crashes
// nothing and ends in socket.resync.
import { test, type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Type, action } from '../index.js'
import { connect } from '../testing/index.js'
import { build, tokenFor, verifyJwt } from './helpers/build.js'
import { startRedis } from './helpers/redis.js'
import type { FastifyInstance } from 'fastify'

async function chatApp (t: Parameters<typeof build>[0], redisUrl: string): Promise<FastifyInstance> {
  const app = await build(t, { wsx: { redis: redisUrl, namespace: 'clustertest' } })
  app.wsx.route({
    url: '/ws/:room',
    schema: { params: Type.Object({ room: Type.String() }) },
    authenticate: [verifyJwt],
    groups: (conn) => `room:${conn.params.room}`,
    channels: {
      feed: { params: Type.Object({ topic: Type.String({ pattern: '^[a-z]+$' }) }) }
    },
    actions: (action) => ({
      'chat.send': action({
        request: Type.Object({ text: Type.String() }),
        async handler (msg, conn) {
          await this.wsx.broadcast(`room:${conn.params.room}`, 'chat.message', { user: conn.user.sub, text: msg.data.text })
          return { sent: true }
        }
      }),
      'room.presence': action({
        async handler (_msg, conn) { return this.wsx.presence(`room:${conn.params.room}`) }
      }),
      'room.kick': action({
        request: Type.Object({ user: Type.String() }),
        async handler (msg) { return { closed: await this.wsx.disconnectUser(msg.data.user) } }
      })
    })
  })
  await app.ready()
  return app
}

/** Two instances on one private Redis, alice on the first and bob on the second, both in room:general. */
async function twoInstances (t: Test) {
  const redis = await startRedis(t)
  if (!redis) return null
  const a = await chatApp(t, redis.url)
  const b = await chatApp(t, redis.url)
  const alice = await connect(a, '/ws/general', { token: tokenFor(a, 'alice') })
  const bob = await connect(b, '/ws/general', { token: tokenFor(b, 'bob') })
  await alice.next('socket.authorized')
  await bob.next('socket.authorized')
  await sleep(100) // both instances subscribed to room:general (real time: Redis does not tell us)
  return { redis, a, b, alice, bob }
}

test('two instances on one Redis act as one server', async (t) => {
  const setup = await twoInstances(t)
  if (!setup) return
  const { redis, a, b, alice, bob } = setup

  t.test('a broadcast on one instance reaches the other exactly once', async (t) => {
    t.match(await alice.request('chat.send', { text: 'hello' }), { ok: true })
    t.strictSame(await bob.next('chat.message'), { action: 'chat.message', data: { user: 'alice', text: 'hello' } })
    t.strictSame(await alice.next('chat.message'), { action: 'chat.message', data: { user: 'alice', text: 'hello' } })
    await sleep(100) // real time: what must not arrive would come over Redis, on no clock of ours
    t.equal(bob.frames.filter((f) => f.action === 'chat.message').length, 1, 'no duplicate delivery')
  })

  t.test('presence lists both users from either instance', async (t) => {
    const fromA = await alice.request('room.presence')
    const fromB = await bob.request('room.presence')
    const expected = [{ user: 'alice', connections: 1 }, { user: 'bob', connections: 1 }]
    t.strictSame(fromA.data, expected)
    t.strictSame(fromB.data, expected)
  })

  t.test('channel events published on one instance reach subscribers on the other', async (t) => {
    t.match(await bob.request('channel.subscribe', { channel: 'feed', params: { topic: 'news' } }), { ok: true })
    await sleep(100) // real time: the other instance's Redis subscription is not acknowledged to us
    await a.wsx.publish('feed', { topic: 'news' }, 'feed.item', { n: 1 })
    t.strictSame(await bob.next('feed.item'), { action: 'feed.item', channel: 'feed', params: { topic: 'news' }, data: { n: 1 } })
  })

  t.test('sendToUser reaches every connection of the user, on every instance', async (t) => {
    const bob2 = await connect(a, '/ws/other', { token: tokenFor(a, 'bob') })
    await bob2.next('socket.authorized')
    t.equal(await b.wsx.sendToUser('bob', 'notice', { text: 'hi' }), 2)
    t.match(await bob.next('notice'), { data: { text: 'hi' } })
    t.match(await bob2.next('notice'), { data: { text: 'hi' } })
    await bob2.close()
  })

  t.test('kicking a user on one instance closes their socket on the other with 4403', async (t) => {
    const mallory = await connect(b, '/ws/general', { token: tokenFor(b, 'mallory') })
    await mallory.next('socket.authorized')
    const reply = await alice.request('room.kick', { user: 'mallory' })
    t.strictSame(reply.data, { closed: 1 })
    t.equal((await mallory.closed()).code, 4403)
  })

  t.test('a per-user throttle is one limit across instances', async (t) => {
    const opts = { wsx: { redis: redis.url, namespace: 'sharedthrottle' } }
    const apps = [await build(t, opts), await build(t, opts)]
    for (const app of apps) {
      app.wsx.route({ url: '/ws', authenticate: [verifyJwt], actions: { 'x.send': action({ throttle: { max: 2, timeWindow: 60_000 }, handler: async () => ({}) }) } })
    }
    const [one, two] = await Promise.all(apps.map(async (app) => {
      const c = await connect(app, '/ws', { token: tokenFor(app, 'carol') })
      await c.next('socket.authorized')
      return c
    }))
    t.match(await one!.request('x.send'), { ok: true })
    t.match(await two!.request('x.send'), { ok: true })
    t.match(await one!.request('x.send'), { ok: false, error: { code: 'throttled' } }, 'the third, on either instance, is throttled')
    t.match(await two!.request('x.send'), { ok: false, error: { code: 'throttled' } })
    await one!.close()
    await two!.close()
  })

  t.test('throttles and handshake locks are shared', async (t) => {
    // the lockout key is the client address: both instances see 127.0.0.1
    const app1 = await build(t, { wsx: { redis: redis.url, namespace: 'locktest', handshake: { attempts: 2, lockSeconds: 5 } } })
    const app2 = await build(t, { wsx: { redis: redis.url, namespace: 'locktest', handshake: { attempts: 2, lockSeconds: 5 } } })
    for (const app of [app1, app2]) app.wsx.route({ url: '/ws', authenticate: [verifyJwt], actions: { 'x.y': action({ handler: async () => ({}) }) } })
    const c1 = await connect(app1, '/ws')
    await c1.next('socket.handshake')
    t.match(await c1.authorize('bad'), { ok: false, error: { code: 'authentication_failed', attempts_left: 1 } })
    t.match(await c1.authorize('bad'), { ok: false, error: { code: 'authentication_failed', attempts_left: 0 } })
    t.equal((await c1.closed()).code, 4408)
    const c2 = await connect(app2, '/ws')
    await c2.next('socket.handshake')
    const locked = await c2.authorize(tokenFor(app2, 'alice'))
    t.match(locked, { ok: false, error: { code: 'locked' } })
    t.ok((locked.error?.retry_after ?? 0) >= 1)
    await c2.close()
  })
})

test('a Redis outage crashes nothing and ends in socket.resync, then delivery resumes', async (t) => {
  const setup = await twoInstances(t)
  if (!setup) return
  const { redis, alice, bob } = setup

  await redis.stop()
  // during the outage the send fails visibly or is delivered later; never a crash
  const during = await alice.request('chat.send', { text: 'during' }, { timeoutMs: 5000 })
  t.ok(during.ok === true || during.error?.code === 'server_error', 'answered during the outage')
  await redis.restart()

  t.match(await bob.next('socket.resync', 10_000), { action: 'socket.resync', data: { groups: ['room:general'] } })
  t.match(await alice.next('socket.resync', 10_000), { action: 'socket.resync', data: { groups: ['room:general'] } })
  await sleep(200) // real time: the resubscription after the resync happens on real Redis links
  t.match(await alice.request('chat.send', { text: 'after' }), { ok: true })
  t.match(await bob.next((f) => f.action === 'chat.message' && (f.data as { text: string }).text === 'after', 5000), { data: { text: 'after' } })
})

test('with Redis stopped or frozen, throttled actions fail closed: throttled, quickly, never a pass', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const app = await build(t, { wsx: { redis: redis.url, namespace: 'throttledown' } })
  let calls = 0
  app.wsx.route({
    url: '/ws',
    authenticate: [verifyJwt],
    actions: { 'x.send': action({ throttle: { max: 100, timeWindow: 60_000 }, handler: async () => { calls++; return {} } }) }
  })
  const c = await connect(app, '/ws', { token: tokenFor(app, 'alice') })
  await c.next('socket.authorized')
  t.match(await c.request('x.send'), { ok: true })
  t.equal(calls, 1)

  await redis.stop()
  let started = Date.now()
  const down = await c.request('x.send', undefined, { timeoutMs: 5000 })
  t.match(down, { ok: false, error: { code: 'throttled' } }, 'Redis down: throttled')
  t.ok((down.error?.retry_after ?? 0) >= 1)
  t.ok(Date.now() - started < 2500, `answered in ${Date.now() - started} ms`)
  await redis.restart()
  await sleep(500) // real time: a real redis-server restart, and ioredis's own reconnect schedule

  redis.freeze()
  t.teardown(() => redis.thaw())
  started = Date.now()
  const frozen = await c.request('x.send', undefined, { timeoutMs: 5000 })
  t.match(frozen, { ok: false, error: { code: 'throttled' } }, 'Redis frozen: throttled')
  t.ok(Date.now() - started < 2500, `answered in ${Date.now() - started} ms`)
  redis.thaw()
  t.equal(calls, 1, 'no request passed while the store was unreachable')
  await c.close()
})
