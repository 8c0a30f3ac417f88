// In-process limiter and lockout: exact counting, windows, buckets, fail-closed answers.
// The Redis-backed twins are in stores-redis.test.ts.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { createLimiter, createLockout } from '../lib/security/stores/index.js'
import { settleWithin } from '../lib/security/stores/limiter.js'
import { fakeClock } from './helpers/fake-clock.js'

t.test('limiter: a same-tick burst is counted exactly', async (t) => {
  const limiter = createLimiter({ namespace: 'test' })
  const results = await Promise.all([1, 2, 3, 4].map(() => limiter.consume('user:alice:chat.send', 3, 1000)))
  t.same(results.map(r => r.allowed), [true, true, true, false])
  t.same(results.map(r => r.current), [1, 2, 3, 4])
  t.same(results.slice(0, 3).map(r => r.retryAfterMs), [0, 0, 0])
  const last = results[3]!
  t.ok(last.retryAfterMs > 0 && last.retryAfterMs <= 1000, `retryAfterMs ${last.retryAfterMs} within the window`)
  t.notOk(last.error, 'a refusal over the limit is not an error')
})

t.test('limiter: the window expires', async (t) => {
  const clock = fakeClock(t)
  const limiter = createLimiter({ namespace: 'test' })
  t.equal((await limiter.consume('k', 1, 200)).allowed, true)
  const refused = await limiter.consume('k', 1, 200)
  t.equal(refused.allowed, false)
  t.ok(refused.retryAfterMs <= 200)
  clock.tick(refused.retryAfterMs - 1)
  t.equal((await limiter.consume('k', 1, 200)).allowed, false, '1 ms before retryAfterMs: still refused')
  clock.tick(1)
  const again = await limiter.consume('k', 1, 200)
  t.equal(again.allowed, true)
  t.equal(again.current, 1, 'a new window starts from 1')
})

t.test('limiter: buckets are separate per key and per limit', async (t) => {
  const limiter = createLimiter({ namespace: 'test' })
  t.equal((await limiter.consume('user:a:x', 1, 1000)).allowed, true)
  t.equal((await limiter.consume('user:a:x', 1, 1000)).allowed, false)
  t.equal((await limiter.consume('user:b:x', 1, 1000)).allowed, true, 'another user')
  t.equal((await limiter.consume('user:a:y', 1, 1000)).allowed, true, 'another action')
  t.equal((await limiter.consume('user:a:x', 1, 5000)).allowed, true, 'same key, another window')
  t.equal((await limiter.consume('user:a:x', 2, 1000)).allowed, true, 'same key, another max')
})

t.test('limiter: max 0 refuses everything', async (t) => {
  const limiter = createLimiter({ namespace: 'test' })
  const r = await limiter.consume('k', 0, 1000)
  t.equal(r.allowed, false)
  t.notOk(r.error)
})

t.test('limiter: invalid limits and a closed limiter fail closed', async (t) => {
  const seen: string[] = []
  const limiter = createLimiter({ namespace: 'test', errorRetryMs: 700, onError: (err) => { seen.push(err.message) } })
  for (const [max, win] of [[1.5, 1000], [-1, 1000], [3, 0], [3, Number.NaN]] as const) {
    t.same(await limiter.consume('k', max, win), { allowed: false, current: 0, retryAfterMs: 700, error: true }, `max ${max}, window ${win}`)
  }
  await limiter.close()
  t.same(await limiter.consume('k', 3, 1000), { allowed: false, current: 0, retryAfterMs: 700, error: true }, 'closed')
  t.equal(seen.length, 5, 'every failure is reported')
})

t.test('limiter: a throwing onError does not turn a refusal into a throw', async (t) => {
  const limiter = createLimiter({ namespace: 'test', onError: () => { throw new Error('logger broke') } })
  await limiter.close()
  t.match(await limiter.consume('k', 1, 1000), { allowed: false, error: true })
})

t.test('settleWithin', async (t) => {
  const fallback = (err: Error) => `fallback: ${err.message}`
  t.equal(await settleWithin(async () => 'value', 100, fallback), 'value')
  t.equal(await settleWithin(async () => { throw new Error('boom') }, 100, fallback), 'fallback: boom')
  t.equal(await settleWithin(() => { throw new Error('sync') }, 100, fallback), 'fallback: sync')
  // eslint-disable-next-line prefer-promise-reject-errors
  t.equal(await settleWithin(() => Promise.reject('text'), 100, fallback), 'fallback: text')
  const started = Date.now()
  const hung = await settleWithin(() => new Promise<string>(() => {}), 50, fallback)
  t.match(hung, /did not answer within 50 ms/)
  t.ok(Date.now() - started < 500)
  // a late rejection after the deadline must not surface as an unhandled rejection
  t.equal(await settleWithin(() => sleep(60).then(() => { throw new Error('late') }), 20, () => 'timed out'), 'timed out')
  await sleep(80) // real time: settleWithin's own deadline is what is measured here
})

t.test('lockout: attempts, then a lock with retryAfter', async (t) => {
  const lockout = createLockout({ namespace: 'test' })
  t.same(await lockout.check('ip:1'), { locked: false, retryAfter: 0 })
  t.same(await lockout.fail('ip:1', 3, 20), { attemptsLeft: 2, locked: false, retryAfter: 0 })
  t.same(await lockout.fail('ip:1', 3, 20), { attemptsLeft: 1, locked: false, retryAfter: 0 })
  t.same(await lockout.fail('ip:1', 3, 20), { attemptsLeft: 0, locked: true, retryAfter: 20 })
  t.same(await lockout.check('ip:1'), { locked: true, retryAfter: 20 })
  t.same(await lockout.check('ip:2'), { locked: false, retryAfter: 0 }, 'another address is not locked')
  // a failure while locked (two connections racing) neither extends nor lifts the lock
  t.same(await lockout.fail('ip:1', 3, 60), { attemptsLeft: 0, locked: true, retryAfter: 20 })
})

t.test('lockout: retryAfter is whole seconds rounded up', async (t) => {
  const lockout = createLockout({ namespace: 'test' })
  t.same(await lockout.fail('k', 1, 1.2), { attemptsLeft: 0, locked: true, retryAfter: 2 })
  t.same(await lockout.fail('j', 1, 0.01), { attemptsLeft: 0, locked: true, retryAfter: 1 }, 'at least 1')
})

t.test('lockout: reset clears failures and the lock', async (t) => {
  const lockout = createLockout({ namespace: 'test' })
  await lockout.fail('a', 2, 20)
  await lockout.reset('a')
  t.same(await lockout.fail('a', 2, 20), { attemptsLeft: 1, locked: false, retryAfter: 0 }, 'failures forgotten')
  await lockout.fail('a', 2, 20)
  t.equal((await lockout.check('a')).locked, true)
  await lockout.reset('a')
  t.same(await lockout.check('a'), { locked: false, retryAfter: 0 }, 'lock lifted')
})

t.test('lockout: the lock and the failure count expire after lockSeconds', async (t) => {
  const clock = fakeClock(t)
  const lockout = createLockout({ namespace: 'test' })
  await lockout.fail('a', 1, 0.3)
  t.equal((await lockout.check('a')).locked, true)
  await lockout.fail('b', 2, 0.3)
  clock.tick(350)
  t.same(await lockout.check('a'), { locked: false, retryAfter: 0 }, 'lock ended')
  t.same(await lockout.fail('a', 1, 0.3), { attemptsLeft: 0, locked: true, retryAfter: 1 }, 'a fresh set of attempts')
  t.same(await lockout.fail('b', 2, 0.3), { attemptsLeft: 1, locked: false, retryAfter: 0 }, 'old failure forgotten')
})

t.test('lockout: the failure window slides with each failure', async (t) => {
  const clock = fakeClock(t)
  const lockout = createLockout({ namespace: 'test' })
  await lockout.fail('a', 3, 0.3)
  clock.tick(200)
  await lockout.fail('a', 3, 0.3)
  clock.tick(200)
  // 400 ms after the first failure but 200 ms after the second: both still count
  t.same(await lockout.fail('a', 3, 0.3), { attemptsLeft: 0, locked: true, retryAfter: 1 })
})

t.test('lockout: memory is bounded, expired entries go first', async (t) => {
  const clock = fakeClock(t)
  const lockout = createLockout({ namespace: 'test', maxEntries: 2 })
  await lockout.fail('short', 1, 0.05)
  await lockout.fail('long', 1, 20)
  clock.tick(80)
  await lockout.fail('new', 1, 20)
  t.equal((await lockout.check('long')).locked, true, 'the live lock was kept, the expired one dropped')
  await lockout.fail('newer', 1, 20)
  t.equal((await lockout.check('long')).locked, false, 'over the cap, the oldest is dropped')
  t.equal((await lockout.check('newer')).locked, true)
})

t.test('lockout: invalid arguments and a closed lockout fail closed', async (t) => {
  const errors: Error[] = []
  const lockout = createLockout({ namespace: 'test', errorRetrySeconds: 3, onError: (err) => { errors.push(err) } })
  t.same(await lockout.fail('k', 0, 20), { attemptsLeft: 0, locked: true, retryAfter: 3, error: true })
  t.same(await lockout.fail('k', 2, 0), { attemptsLeft: 0, locked: true, retryAfter: 3, error: true })
  await lockout.close()
  t.same(await lockout.check('k'), { locked: true, retryAfter: 3, error: true })
  t.same(await lockout.fail('k', 2, 20), { attemptsLeft: 0, locked: true, retryAfter: 3, error: true })
  t.equal(await lockout.reset('k'), undefined, 'reset resolves')
  t.equal(errors.length, 5)
})
