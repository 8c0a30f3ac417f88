// Redis-backed limiter and lockout against a private redis-server: exact counting, one
// limit across instances, and fail-closed answers while Redis is stopped or frozen.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis, type RedisOptions } from 'ioredis'
import { startRedis, type RedisHandle } from './helpers/redis.js'
import { createLimiter, createLockout } from '../lib/security/stores/index.js'

interface Fixture {
  handle: RedisHandle
  /** A client configured like lib/redis/create.ts' store clients, connected and ready. */
  connect (extra?: RedisOptions): Promise<Redis>
}

function ready (client: Redis, ms = 5000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis client not ready after ${ms} ms (${client.status})`)), ms)
    client.once('ready', () => { clearTimeout(timer); resolve() })
  })
}

// tap's Test does not match the helper's TapLike (its `skip` is the subtest overload), so
// the fixture takes tap's `t` structurally and casts once.
type TapTest = { teardown (fn: () => unknown): void }

async function fixture (t: TapTest): Promise<Fixture | null> {
  const clients: Redis[] = []
  // registered before startRedis so (FIFO teardowns) clients go before the server stops
  t.teardown(() => { for (const c of clients) c.disconnect() })
  const handle = await startRedis(t as Parameters<typeof startRedis>[0])
  if (!handle) return null
  return {
    handle,
    async connect (extra = {}) {
      const client = new Redis({
        host: handle.host,
        port: handle.port,
        commandTimeout: 500,
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        ...extra
      })
      client.on('error', () => {})
      clients.push(client)
      await ready(client)
      return client
    }
  }
}

t.test('limiter: a same-tick burst is counted exactly', async (t) => {
  const f = await fixture(t)
  if (!f) return
  const limiter = createLimiter({ redis: await f.connect(), namespace: 'app1' })
  const results = await Promise.all([1, 2, 3, 4].map(() => limiter.consume('user:alice:chat.send', 3, 1000)))
  t.same(results.map(r => r.allowed), [true, true, true, false])
  t.same(results.map(r => r.current), [1, 2, 3, 4])
  const last = results[3]!
  t.ok(last.retryAfterMs > 0 && last.retryAfterMs <= 1000, `retryAfterMs ${last.retryAfterMs}`)
  t.notOk(last.error)
  const keys = await f.handle.client().keys('*')
  t.same(keys, ['app1:rl:3/1000:user:alice:chat.send'], 'namespaced key naming the limit')
})

t.test('limiter: the window expires', async (t) => {
  const f = await fixture(t)
  if (!f) return
  const limiter = createLimiter({ redis: await f.connect(), namespace: 'app1' })
  t.equal((await limiter.consume('k', 1, 200)).allowed, true)
  const refused = await limiter.consume('k', 1, 200)
  t.equal(refused.allowed, false)
  await sleep(refused.retryAfterMs + 30) // real time: the window is a key's TTL inside redis-server
  t.same(await limiter.consume('k', 1, 200), { allowed: true, current: 1, retryAfterMs: 0 })
})

t.test('limiter: buckets are separate per key, limit and namespace', async (t) => {
  const f = await fixture(t)
  if (!f) return
  const redis = await f.connect()
  const limiter = createLimiter({ redis, namespace: 'app1' })
  t.equal((await limiter.consume('user:a:x', 1, 1000)).allowed, true)
  t.equal((await limiter.consume('user:a:x', 1, 1000)).allowed, false)
  t.equal((await limiter.consume('user:b:x', 1, 1000)).allowed, true, 'another user')
  t.equal((await limiter.consume('user:a:y', 1, 1000)).allowed, true, 'another action')
  t.equal((await limiter.consume('user:a:x', 1, 5000)).allowed, true, 'another window')
  const otherApp = createLimiter({ redis, namespace: 'app2' })
  t.equal((await otherApp.consume('user:a:x', 1, 1000)).allowed, true, 'another app on the same Redis')
})

t.test('limiter: two instances on one Redis enforce one limit', async (t) => {
  const f = await fixture(t)
  if (!f) return
  const a = createLimiter({ redis: await f.connect(), namespace: 'app1' })
  const b = createLimiter({ redis: await f.connect(), namespace: 'app1' })
  const results = await Promise.all([a, b, a, b, a, b].map(l => l.consume('user:alice:chat.send', 3, 1000)))
  t.equal(results.filter(r => r.allowed).length, 3, 'three allowed in total')
  t.same(results.map(r => r.current).sort(), [1, 2, 3, 4, 5, 6], 'one counter')
  const pttl = await f.handle.client().pttl('app1:rl:3/1000:user:alice:chat.send')
  t.ok(pttl > 0 && pttl <= 1000, `the counter expires (PTTL ${pttl})`)
})

t.test('limiter: Redis stopped fails closed quickly, and recovers after a restart', async (t) => {
  const f = await fixture(t)
  if (!f) return
  const redis = await f.connect()
  const errors: Error[] = []
  const limiter = createLimiter({ redis, namespace: 'app1', onError: (err) => { errors.push(err) } })
  t.equal((await limiter.consume('k', 5, 10_000)).allowed, true)

  await f.handle.stop()
  const started = Date.now()
  const down = await Promise.all([limiter.consume('k', 5, 10_000), limiter.consume('k', 5, 10_000)])
  t.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`)
  t.same(down, [
    { allowed: false, current: 0, retryAfterMs: 1000, error: true },
    { allowed: false, current: 0, retryAfterMs: 1000, error: true }
  ])
  t.equal(errors.length, 2, 'failures reported')

  await f.handle.restart()
  await ready(redis)
  // the restart emptied Redis' script cache: EVALSHA must fall back to EVAL
  t.same(await limiter.consume('k', 5, 10_000), { allowed: true, current: 1, retryAfterMs: 0 })
})

t.test('limiter: Redis frozen fails closed within the command timeout', async (t) => {
  const f = await fixture(t)
  if (!f) return
  const redis = await f.connect()
  const limiter = createLimiter({ redis, namespace: 'app1' })
  t.equal((await limiter.consume('k', 5, 10_000)).allowed, true)

  f.handle.freeze()
  try {
    const started = Date.now()
    const r = await limiter.consume('k', 5, 10_000)
    const took = Date.now() - started
    t.match(r, { allowed: false, error: true })
    t.ok(took >= 400 && took < 1500, `answered in ${took} ms (commandTimeout 500)`)
  } finally {
    f.handle.thaw()
  }
  await ready(redis)
  t.match(await limiter.consume('k', 5, 10_000), { allowed: true, error: undefined }, 'works again after thaw')
})

t.test('limiter: its own deadline holds when the client has no commandTimeout', async (t) => {
  const f = await fixture(t)
  if (!f) return
  const redis = await f.connect({ commandTimeout: undefined })
  const limiter = createLimiter({ redis, namespace: 'app1', timeoutMs: 300 })
  t.equal((await limiter.consume('k', 5, 10_000)).allowed, true)

  f.handle.freeze()
  try {
    const started = Date.now()
    const r = await limiter.consume('k', 5, 10_000)
    const took = Date.now() - started
    t.match(r, { allowed: false, error: true })
    t.ok(took >= 250 && took < 1000, `answered in ${took} ms (timeoutMs 300)`)
  } finally {
    f.handle.thaw()
  }
})

t.test('lockout: attempts, then a lock that holds across instances', async (t) => {
  const f = await fixture(t)
  if (!f) return
  const first = createLockout({ redis: await f.connect(), namespace: 'app1' })
  t.same(await first.check('ip:1'), { locked: false, retryAfter: 0 })
  t.same(await first.fail('ip:1', 2, 20), { attemptsLeft: 1, locked: false, retryAfter: 0 })
  t.same(await first.fail('ip:1', 2, 20), { attemptsLeft: 0, locked: true, retryAfter: 20 })
  await first.close()

  // a reconnect landing on another instance: another client, another lockout
  const second = createLockout({ redis: await f.connect(), namespace: 'app1' })
  t.same(await second.check('ip:1'), { locked: true, retryAfter: 20 })
  t.same(await second.fail('ip:1', 2, 60), { attemptsLeft: 0, locked: true, retryAfter: 20 }, 'a failure while locked does not extend it')
  t.same(await second.check('ip:2'), { locked: false, retryAfter: 0 }, 'another address')
  const other = createLockout({ redis: await f.connect(), namespace: 'app2' })
  t.same(await other.check('ip:1'), { locked: false, retryAfter: 0 }, 'another app on the same Redis')
  const pttl = await f.handle.client().pttl('app1:lock:ip:1')
  t.ok(pttl > 19_000 && pttl <= 20_000, `lock key expires (PTTL ${pttl})`)
})

t.test('lockout: concurrent failures from two instances lock exactly once', async (t) => {
  const f = await fixture(t)
  if (!f) return
  const a = createLockout({ redis: await f.connect(), namespace: 'app1' })
  const b = createLockout({ redis: await f.connect(), namespace: 'app1' })
  const results = await Promise.all([a, b, a, b].map(l => l.fail('ip:1', 3, 20)))
  t.same(results.map(r => r.attemptsLeft).sort(), [0, 0, 1, 2])
  t.equal(results.filter(r => r.locked).length, 2, 'the third failure locks, the fourth sees the lock')
})

t.test('lockout: reset clears, and everything expires after lockSeconds', async (t) => {
  const f = await fixture(t)
  if (!f) return
  const lockout = createLockout({ redis: await f.connect(), namespace: 'app1' })
  await lockout.fail('a', 2, 20)
  await lockout.reset('a')
  t.same(await lockout.fail('a', 2, 20), { attemptsLeft: 1, locked: false, retryAfter: 0 }, 'failures forgotten')
  await lockout.fail('a', 2, 20)
  await lockout.reset('a')
  t.same(await lockout.check('a'), { locked: false, retryAfter: 0 }, 'lock lifted')

  t.same(await lockout.fail('b', 1, 1), { attemptsLeft: 0, locked: true, retryAfter: 1 })
  await lockout.fail('c', 2, 1)
  await sleep(1100) // real time: the lock is a key's TTL inside redis-server
  t.same(await lockout.check('b'), { locked: false, retryAfter: 0 }, 'lock ended')
  t.same(await lockout.fail('c', 2, 1), { attemptsLeft: 1, locked: false, retryAfter: 0 }, 'old failure forgotten')
})

t.test('lockout: Redis down or frozen means locked, quickly', async (t) => {
  const f = await fixture(t)
  if (!f) return
  const redis = await f.connect()
  const errors: Error[] = []
  const lockout = createLockout({ redis, namespace: 'app1', onError: (err) => { errors.push(err) } })
  t.same(await lockout.check('ip:1'), { locked: false, retryAfter: 0 })

  f.handle.freeze()
  try {
    const started = Date.now()
    t.same(await lockout.check('ip:1'), { locked: true, retryAfter: 5, error: true }, 'frozen: check')
    t.ok(Date.now() - started < 1500, `answered in ${Date.now() - started} ms`)
  } finally {
    f.handle.thaw()
  }

  await f.handle.stop()
  const started = Date.now()
  t.same(await lockout.check('ip:1'), { locked: true, retryAfter: 5, error: true }, 'stopped: check')
  t.same(await lockout.fail('ip:1', 2, 20), { attemptsLeft: 0, locked: true, retryAfter: 5, error: true }, 'stopped: fail')
  t.equal(await lockout.reset('ip:1'), undefined, 'stopped: reset resolves')
  t.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`)
  t.equal(errors.length, 4, 'failures reported')

  await f.handle.restart()
  await ready(redis)
  t.same(await lockout.fail('ip:1', 2, 20), { attemptsLeft: 1, locked: false, retryAfter: 0 }, 'works after restart')
})
