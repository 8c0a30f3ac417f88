// The cross-instance control protocol (lib/broadcast/control.ts) on real buses: a request
// ends as soon as every instance that heard it has answered (PUBLISH says how many did),
// with the sum of their counts; an instance that never answers costs the window, no more.
// The window is set to a minute where a test proves an early end, and the request must end
// within 10 s: ending at all is the proof. Two app instances on one Redis (every client
// form): test/redis-forms.test.ts.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { Bus } from '../lib/broadcast/bus.js'
import { startControl, type ControlRequest } from '../lib/broadcast/control.js'
import { GroupRegistry } from '../lib/broadcast/groups.js'
import { createRedisEmitter } from '../lib/broadcast/redis-emitter.js'
import { buildConfig } from '../lib/boot/config.js'
import { Core, type ConnectionRef } from '../lib/instance/core.js'
import { createLimiter, createLockout } from '../lib/security/stores/index.js'
import { startRedis, type RedisHandle } from './helpers/redis.js'

const MINUTE = 60_000

/** A user's connection as the control handlers see it: what it was sent, how it was closed. */
function userConnection (core: Core, user: string, id: string) {
  const sent: string[] = []
  const closed: Array<[number | undefined, string | undefined]> = []
  const conn: ConnectionRef & { sendRaw (frame: string): boolean } = {
    id,
    userKey: user,
    ip: '127.0.0.1',
    url: '/ws',
    close (code, reason) { closed.push([code, reason]) },
    heartbeat () {},
    sendRaw (frame) { sent.push(frame); return true }
  }
  core.added(conn)
  core.addUser(conn, user)
  return { sent, closed }
}

/** `request`, which must end well before its one-minute window. */
function early<T> (request: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('the request waited for its window')), 10_000)
  })
  return Promise.race([request, bound]).finally(() => clearTimeout(timer))
}

interface Instance { core: Core, bus: Bus, request: ControlRequest }

async function instance (t: Test, namespace: string, redis: RedisHandle | null, waitMs: number): Promise<Instance> {
  const log = Fastify({ logger: false }).log
  const bus = new Bus({ namespace, ...(redis && { emitter: createRedisEmitter(redis.url, namespace) }) })
  t.teardown(() => bus.close())
  if (redis) {
    while (!bus.up) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const core = new Core(buildConfig({ namespace }), log, {
    groups: new GroupRegistry(bus, 10),
    limiter: createLimiter({ namespace, onError () {} }),
    lockout: createLockout({ namespace, onError () {} })
  })
  const request = await startControl(core, bus, { distributed: redis !== null, waitMs })
  return { core, bus, request }
}

t.test('on Redis: the request ends when every instance that heard it answered, with their sum', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const [a, b, c] = [await instance(t, 'ctl', redis, MINUTE), await instance(t, 'ctl', redis, MINUTE), await instance(t, 'ctl', redis, MINUTE)]
  const onB = userConnection(b.core, 'bob', 'b1')
  const onC1 = userConnection(c.core, 'bob', 'c1')
  const onC2 = userConnection(c.core, 'bob', 'c2')
  t.equal(await early(a.request('user-send', { user: 'bob', frame: 'hi' })), 3, 'one on B, two on C, none on A')
  t.same([onB.sent, onC1.sent, onC2.sent], [['hi'], ['hi'], ['hi']])
  t.equal(await early(b.request('user-send', { user: 'nobody', frame: 'x' })), 0, 'a user nowhere: every instance answers 0')
  t.equal(await early(c.request('user-close', { user: 'bob', code: 4403, reason: 'bye' })), 3)
  t.same([onB.closed, onC1.closed, onC2.closed], [[[4403, 'bye']], [[4403, 'bye']], [[4403, 'bye']]])
})

t.test('on Redis: a subscriber that never answers costs the window, and the answers are kept', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const a = await instance(t, 'mute', redis, 200)
  const b = await instance(t, 'mute', redis, 200)
  userConnection(b.core, 'bob', 'b1')
  // a third subscriber of the request channel that is not an instance: PUBLISH counts it
  const listener = redis.client()
  await listener.subscribe('mute/c/user-send')
  t.equal(await a.request('user-send', { user: 'bob', frame: 'hi' }), 1, 'the window ends with the two answers it got')
})

t.test('in process: the one instance answers, and the request ends with it', async (t) => {
  const a = await instance(t, 'solo', null, MINUTE)
  const ws = userConnection(a.core, 'alice', 'a1')
  userConnection(a.core, 'alice', 'a2')
  t.equal(await early(a.request('user-send', { user: 'alice', frame: 'hi' })), 2)
  t.same(ws.sent, ['hi'])
  t.equal(await early(a.request('user-close', { user: 'alice', code: 4403, reason: 'bye' })), 2)
})
