// The internals of mqemitter-redis and ioredis the bus patches or reads
// (lib/redis/emitter-patches.ts, lib/redis/cluster-link.ts): when one is not there in the
// shape expected (a new version moved it), boot fails with WSX_ERR_REDIS_INTERNALS instead
// of a guarantee being lost silently. Real mqemitter-redis and ioredis, one part removed.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import MQEmitterRedis from 'mqemitter-redis'
import { Cluster } from 'ioredis'
import wsx from '../index.js'
import { Bus } from '../lib/broadcast/bus.js'
import { createRedisEmitter } from '../lib/broadcast/redis-emitter.js'
import { ClusterSubscriberLink } from '../lib/redis/cluster-link.js'
import { createRedis, disconnectRedis } from '../lib/redis/create.js'
import type { WsxEmitter } from '../types/options.js'
import { startRedis, type RedisHandle } from './helpers/redis.js'

/** A stock mqemitter-redis on connections of our own, closed at teardown. */
function stockEmitter (t: Test, redis: RedisHandle): WsxEmitter & Record<string, any> {
  const subConn = createRedis(redis.url, { purpose: 'bus' })
  const pubConn = createRedis(redis.url, { purpose: 'store' })
  const emitter = MQEmitterRedis({ subConn, pubConn }) as unknown as WsxEmitter & Record<string, any>
  // a refused emitter is never patched: its disconnection errors must not crash the test
  const state = emitter.state
  state.on('error', () => {})
  t.teardown(() => Promise.all([disconnectRedis(subConn), disconnectRedis(pubConn)]))
  return emitter
}

const INTERNALS = { code: 'WSX_ERR_REDIS_INTERNALS' }

t.test('a stock mqemitter-redis passes the checks; one without a part fails with a coded error', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const ok = new Bus({ emitter: stockEmitter(t, redis) })
  t.ok(ok.onRedis, 'recognised and patched')
  await ok.close()

  const cases: Array<[string, (e: Record<string, any>) => void, RegExp]> = [
    ['its message handler moved', (e) => { e.subConn.removeAllListeners('messageBuffer') }, /no 'messageBuffer' listener/],
    ['its pattern handler moved', (e) => { e.subConn.removeAllListeners('pmessageBuffer') }, /no 'pmessageBuffer' listener/],
    ['no state emitter', (e) => { e.state = { emit () {}, on () {} } }, /state is not an EventEmitter/],
    ['no publisher', (e) => { delete e.pubConn }, /pubConn is not a connection/],
    ['a subscriber without quit()', (e) => { e.subConn.quit = undefined }, /subConn\.quit is not a function/],
    ['a status ioredis never had', (e) => { e.subConn.status = 'warming' }, /subConn\.status is warming/]
  ]
  for (const [what, breakIt, message] of cases) {
    const emitter = stockEmitter(t, redis)
    breakIt(emitter)
    t.throws(() => new Bus({ emitter }), { ...INTERNALS, message }, what)
  }
})

t.test('the plugin refuses to boot on an mqemitter-redis it cannot guard', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const emitter = stockEmitter(t, redis)
  emitter.subConn.removeAllListeners('messageBuffer')
  const app = Fastify()
  t.teardown(() => app.close())
  const err = await app.register(wsx, { emitter }).ready().then(() => null, (e: unknown) => e)
  t.match(err, { ...INTERNALS, message: /mqemitter-redis/ }, 'ready() rejects with the coded error')
})

t.test('the plugin\'s own emitter is checked as soon as it is built', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const emitter = createRedisEmitter(redis.url, 'checked') as WsxEmitter & Record<string, any>
  const bus = new Bus({ emitter })
  t.teardown(() => bus.close())
  const handlers = emitter.subConn.listeners('messageBuffer') as Array<{ [k: symbol]: unknown }>
  t.equal(handlers.length, 1, 'mqemitter-redis\' one message handler')
  t.ok(Object.getOwnPropertySymbols(handlers[0]).length > 0, 'is the guarded one')
})

t.test('a Cluster without the subscriber holder ioredis had fails with a coded error', async (t) => {
  // never connected: the holder is read when the link is built
  const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true })
  t.teardown(() => { cluster.disconnect() })
  const link = new ClusterSubscriberLink(cluster as never)
  t.equal(link.status, 'wait', 'the stock Cluster has it')
  link.removeAllListeners()
  const fields = cluster as unknown as Record<string, unknown>
  const holder = fields.subscriber
  delete fields.subscriber
  t.throws(() => new ClusterSubscriberLink(cluster as never), { ...INTERNALS, message: /ioredis Cluster.*subscriber\.getInstance/ })
  fields.subscriber = holder // Cluster.disconnect() needs it back
})
