// Presence: who is in a group, in memory and across instances in Redis, including the
// expiry of a crashed instance's entries and the self-healing of a live one's.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryPresence, RedisPresence, summarize, type PresenceStore } from '../lib/broadcast/presence.js'
import { createRedis, closeRedis } from '../lib/redis/create.js'
import { startRedis, type RedisHandle } from './helpers/redis.js'
import { tsNodeArgs } from './helpers/ts-child.js'
import { eventually } from './helpers/eventually.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/bus-process.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('..', import.meta.url))

function redisPresence (t: Test, redis: RedisHandle, instanceId: string, ttlMs = 30_000) {
  const client = createRedis(redis.url, { purpose: 'store' })
  const presence = new RedisPresence(client, { instanceId, ttlMs })
  t.teardown(async () => { await presence.close(); await closeRedis(client) })
  return { client, presence }
}

async function contract (t: Test, store: PresenceStore) {
  await store.add('lobby', 'c1', 'bob')
  await store.add('lobby', 'c2', 'alice')
  await store.add('lobby', 'c3', 'alice')
  await store.add('other', 'c4', 'zoe')
  t.same(await store.list('lobby'), [{ user: 'alice', connections: 2 }, { user: 'bob', connections: 1 }], 'sorted by user, counted')
  await store.add('lobby', 'c1', 'bob') // the same connection twice counts once
  await store.remove('lobby', 'c2')
  await store.remove('lobby', 'nope') // unknown connection: harmless
  t.same(await store.list('lobby'), [{ user: 'alice', connections: 1 }, { user: 'bob', connections: 1 }])
  await store.remove('lobby', 'c1')
  await store.remove('lobby', 'c3')
  t.same(await store.list('lobby'), [])
  t.same(await store.list('other'), [{ user: 'zoe', connections: 1 }])
  t.same(await store.list('empty'), [])
  await t.rejects(store.add('room/#', 'c', 'u'), { code: 'WSX_ERR_GROUP_NAME' })
  await t.rejects(store.list('room*'), { code: 'WSX_ERR_GROUP_NAME' })
  await t.rejects(store.add('lobby', '', 'u'), TypeError)
  await t.rejects(store.add('lobby', 'c', ''), TypeError)
}

t.test('summarize counts and sorts by code unit', async (t) => {
  t.same(summarize(['b', 'a', 'B', 'a']), [{ user: 'B', connections: 1 }, { user: 'a', connections: 2 }, { user: 'b', connections: 1 }])
})

t.test('MemoryPresence', async (t) => {
  const store = new MemoryPresence()
  await contract(t, store)
  await store.close()
  t.same(await store.list('other'), [])
})

t.test('RedisPresence: same contract', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const { presence } = redisPresence(t, redis, 'solo')
  await contract(t, presence)
})

t.test('RedisPresence: two instances see each other; close removes its own entries', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const a = redisPresence(t, redis, 'a').presence
  const b = redisPresence(t, redis, 'b').presence
  await a.add('lobby', 'a1', 'alice')
  await b.add('lobby', 'b1', 'alice')
  await b.add('lobby', 'b2', 'bob')
  const both = [{ user: 'alice', connections: 2 }, { user: 'bob', connections: 1 }]
  t.same(await a.list('lobby'), both)
  t.same(await b.list('lobby'), both)
  await b.close()
  t.same(await a.list('lobby'), [{ user: 'alice', connections: 1 }])
  const keys = await redis.client().keys('*')
  t.notOk(keys.some(k => k.includes(':i:b')), 'b left no group index behind')
  await t.rejects(b.add('lobby', 'b3', 'carl'), { code: 'WSX_ERR_NOT_READY' })
})

t.test('RedisPresence: a crashed instance expires on its own', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const ttlMs = 300
  const child = spawn(process.execPath, tsNodeArgs(FIXTURE, 'presence', redis.url, String(ttlMs)), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d })
  child.stderr.on('data', (d: Buffer) => { stderr += d })
  await eventually(() => ({ stdout, stderr }), (out) => out.stdout.includes('ready') || child.exitCode !== null, { what: 'child ready', timeout: 20_000 })
  t.equal(child.exitCode, null, `child is running ${stderr}`)

  const { presence: a } = redisPresence(t, redis, 'a', ttlMs)
  await a.add('lobby', 'a1', 'bob')
  t.same(await a.list('lobby'), [{ user: 'alice', connections: 2 }, { user: 'bob', connections: 1 }, { user: 'carol', connections: 1 }])
  await sleep(ttlMs * 2) // real time: the heartbeat and the expiry are scored against a real Redis
  t.equal((await a.list('lobby')).length, 3, 'a live instance keeps its entries past the ttl (heartbeat)')

  const exited = new Promise((resolve) => child.once('exit', resolve))
  process.kill(child.pid!, 'SIGKILL') // a crash: no cleanup
  await exited
  const killedAt = Date.now()
  await eventually(() => a.list('lobby'), (list) => list.length === 1, { what: 'expiry', timeout: ttlMs * 5, interval: 20 })
  const took = Date.now() - killedAt
  t.ok(took <= ttlMs + 150, `gone ${took} ms after the crash`)
  t.same(await a.list('lobby'), [{ user: 'bob', connections: 1 }])
  const fields = await redis.client().hkeys('{wsx:presence}:g:lobby')
  t.same(fields, ['a/a1'], 'the dead entries were cleaned, not only hidden')
})

t.test('RedisPresence: entries dropped while an instance looked dead come back', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const ttlMs = 300
  const { presence: a } = redisPresence(t, redis, 'a', ttlMs)
  const { presence: b } = redisPresence(t, redis, 'b', ttlMs)
  await b.add('lobby', 'b1', 'bea')
  // what another reader does when b's heartbeat is late: b's entries are cleaned
  await redis.client().zrem('{wsx:presence}:hb', 'b')
  t.same(await a.list('lobby'), [], 'cleaned')
  await eventually(() => a.list('lobby'), (list) => list.length === 1, { what: 'b re-published', timeout: ttlMs * 3, interval: 20 })
  t.same(await a.list('lobby'), [{ user: 'bea', connections: 1 }])
})

t.test('RedisPresence: a write that failed is healed by the next heartbeat', async (t) => {
  const redis = await startRedis(t)
  if (!redis?.owned) return
  const ttlMs = 300
  const { presence: a } = redisPresence(t, redis, 'a', ttlMs)
  await a.add('lobby', 'a1', 'ann')
  await redis.stop()
  await t.rejects(a.add('lobby', 'a2', 'abe'), 'fails fast with Redis down')
  await t.rejects(a.remove('lobby', 'a1'))
  await redis.restart() // an empty Redis: everything was lost
  // a probe that throws (Redis still coming back) counts as not yet
  await eventually(() => a.list('lobby'), (list) => list.length === 1, { what: 'healed', timeout: 5000, interval: 20 })
  t.same(await a.list('lobby'), [{ user: 'abe', connections: 1 }], 'Redis matches the local mirror again')
})

t.test('RedisPresence: options are checked', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const client = redis.client()
  t.throws(() => new RedisPresence(client, { instanceId: 'a/b' }), { code: 'WSX_ERR_OPTS_INVALID' })
  t.throws(() => new RedisPresence(client, { namespace: 'x*' }), { code: 'WSX_ERR_OPTS_INVALID' })
  t.throws(() => new RedisPresence(client, { ttlMs: 5 }), { code: 'WSX_ERR_OPTS_INVALID' })
})
