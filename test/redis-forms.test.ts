// Every form of the `redis` option reaches the Redis the app named, and two instances
// given their Redis in different forms share throttles, locks, presence and the bus:
// a URL, ioredis options, an ioredis 5 client (the plugin's own major), an ioredis 6
// client (installed beside it under an npm alias) and `app.redis` from @fastify/redis.
// Boot checks: unusable forms fail with coded errors; replaced settings are named.
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { Redis as Redis5 } from 'ioredis'
import { Redis as Redis6 } from 'ioredis6'
import fastifyRedis from '@fastify/redis'
import Fastify from 'fastify'
import wsx from '../index.js'
import { startRedis, type RedisHandle } from './helpers/redis.js'
import { checkSharedState, sharedApp } from './helpers/shared-state.js'
import type { WsxPluginOptions } from '../types/options.js'

type Form = 'url' | 'options' | 'ioredis5' | 'ioredis6' | '@fastify/redis'

/** The `redis` option of one instance in `form`; clients made here are closed at teardown. */
function redisIn (tt: Test, redis: RedisHandle, form: Form): WsxPluginOptions['redis'] | null {
  switch (form) {
    case 'url': return redis.url
    case 'options': return { host: redis.host, port: redis.port }
    case 'ioredis5': {
      const client = new Redis5({ host: redis.host, port: redis.port, lazyConnect: true })
      tt.teardown(() => { client.disconnect() })
      return client
    }
    case 'ioredis6': {
      const client = new Redis6({ host: redis.host, port: redis.port, lazyConnect: true })
      tt.teardown(() => { client.disconnect() })
      return client
    }
    default: return null // built with the app (see appIn)
  }
}

async function appIn (tt: Test, redis: RedisHandle, form: Form, namespace: string) {
  if (form !== '@fastify/redis') return sharedApp(tt, redisIn(tt, redis, form)!, namespace)
  return sharedApp(tt, undefined, namespace, {}, async (app) => {
    await app.register(fastifyRedis, { host: redis.host, port: redis.port })
    return { redis: app.redis }
  })
}

const pairs: Array<[Form, Form]> = [
  ['url', 'ioredis5'],
  ['ioredis6', '@fastify/redis'],
  ['options', 'ioredis6'],
  ['@fastify/redis', 'url']
]

t.test('two instances given their Redis in different forms act as one server', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  for (const [formA, formB] of pairs) {
    t.test(`${formA} + ${formB}`, async (t) => {
      const namespace = `f-${formA}-${formB}`.replace(/[^A-Za-z0-9_-]/g, '_')
      const a = await appIn(t, redis, formA, namespace)
      const b = await appIn(t, redis, formB, namespace)
      await checkSharedState(t, a, b)
    })
  }
})

t.test('an app client is duplicated, never used, reconfigured or closed', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const mine = new Redis6({ host: redis.host, port: redis.port })
  t.teardown(() => { mine.disconnect() })
  const errorListeners = mine.listenerCount('error')
  const app = await sharedApp(t, mine, 'dup6')
  const probe = redis.client()
  const names = (await probe.client('LIST') as string).split('\n').map((line) => /name=(\S*)/.exec(line)?.[1]).filter(Boolean)
  t.ok(names.includes('dup6:store') && names.includes('dup6:bus:sub') && names.includes('dup6:bus:pub'), `the plugin's own connections, on the named Redis: ${names.join(' ')}`)
  t.notOk('wsxLockoutFailV1' in mine, 'no script defined on the app client')
  t.equal(mine.listenerCount('error'), errorListeners, 'no listener added to the app client')
  await app.close()
  t.equal(mine.status, 'ready', 'the app client is still open after app.close()')
  t.equal(await mine.ping(), 'PONG')
})

t.test('a user client\'s replaced settings are named at boot; keyPrefix is honoured', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(chunk.toString()); cb() } })
  const mine = new Redis6({ host: redis.host, port: redis.port, commandTimeout: 60_000, enableOfflineQueue: true, keyPrefix: 'tenant1:', lazyConnect: true })
  t.teardown(() => { mine.disconnect() })
  const app = await sharedApp(t, mine, 'prefixed', {}, undefined, { logger: { level: 'warn', stream } })
  const warnings = lines.join('')
  t.match(warnings, /commandTimeout/, 'commandTimeout named')
  t.notMatch(warnings, /enableOfflineQueue/, 'a setting left at its default is not reported')
  const a = await sharedApp(t, mine, 'prefixed')
  await checkSharedState(t, app, a)
  const probe = redis.client()
  const keys = await probe.keys('*')
  t.ok(keys.length > 0 && keys.every((k) => k.startsWith('tenant1:')), `every key carries the app's keyPrefix: ${keys.join(' ')}`)
})

t.test('forms that cannot work fail at boot with coded errors', async (t) => {
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['a node-redis client', { duplicate () {}, connect () {}, isOpen: false }, 'WSX_ERR_OPTS_INVALID', /only ioredis clients/],
    ['options naming no server', { password: 'x' }, 'WSX_ERR_OPTS_INVALID', /name no server/],
    ['a string that is not a URL', 'localhost:6379', 'WSX_ERR_OPTS_INVALID', /redis:\/\//],
    ['a Sentinel replica', { sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'mymaster', role: 'slave' }, 'WSX_ERR_REDIS_UNSUITABLE', /replica/],
    ['Sentinel without a name', { sentinels: [{ host: '127.0.0.1', port: 1 }] }, 'WSX_ERR_OPTS_INVALID', /redis\.name/],
    ['a number', 6379, 'WSX_ERR_OPTS_INVALID', /redis must be/]
  ]
  for (const [what, redis, code, message] of cases) {
    const app = Fastify()
    const err = await app.register(wsx, { redis: redis as never }).ready().then(() => null, (e: Error & { code?: string }) => e)
    t.match(err, { code, message }, what)
    await app.close().catch(() => {})
  }
})
