// A Redis outage as clients live through it: upgrades are answered 503 + Retry-After (not
// 429: it is not the client's fault) with a log line saying Redis is unreachable; a client
// that waits each `retry_after` is never closed 4429, however long the fail-closed
// refusals last; when Redis is back the same sockets get socket.resync and carry on.
import t from 'tap'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { WebSocket } from 'ws'
import { action } from '../index.js'
import { connect, baseUrl, UpgradeRefusedError } from '../testing/index.js'
import { createClient, WsxClientError } from '../client/index.js'
import { build, tokenFor, verifyJwt } from './helpers/build.js'
import { startRedis } from './helpers/redis.js'
import { eventually } from './helpers/eventually.js'

// the 30 s outage below runs longer than the suite's per-file default
t.setTimeout(180_000)

async function outageApp (tt: Parameters<typeof build>[0], url: string, namespace: string, lines: string[] = []) {
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(chunk.toString()); cb() } })
  const app = await build(tt, { wsx: { redis: url, namespace, maxThrottledInARow: 2 }, fastify: { logger: { level: 'warn', stream } } })
  app.wsx.route({
    url: '/ws',
    authenticate: [verifyJwt],
    groups: () => 'room:outage',
    actions: { 'x.send': action({ throttle: { max: 1000, timeWindow: 60_000 }, handler: async () => ({ done: true }) }) }
  })
  await app.ready()
  return app
}

t.test('while Redis is down, upgrades get 503 with Retry-After and the log says Redis is unreachable', async (t) => {
  const redis = await startRedis(t)
  if (!redis?.owned) return
  const lines: string[] = []
  const app = await outageApp(t, redis.url, 'outage503', lines)
  const before = await connect(app, '/ws', { token: tokenFor(app, 'alice') })
  await before.next('socket.authorized')
  await before.close()

  await redis.stop()
  const err = await connect(app, '/ws', { token: tokenFor(app, 'alice') }).then(() => null, (e: unknown) => e)
  t.ok(err instanceof UpgradeRefusedError, 'the upgrade is refused over HTTP')
  t.equal((err as UpgradeRefusedError).statusCode, 503, 'not 429: the client did nothing wrong')
  t.ok(Number((err as UpgradeRefusedError).headers['retry-after']) >= 1, 'with Retry-After')
  t.match(lines.join(''), /Redis is unreachable/, 'the log says why')

  await redis.restart()
  const again = eventually(() => connect(app, '/ws', { token: tokenFor(app, 'alice') }), { what: 'an upgrade to pass', timeout: 15_000, interval: 100 })
  await t.resolves(again, 'upgrades pass again once Redis is back')
  await again.then((c) => c.close(), () => {})
})

t.test('without a connection rate limit, the lock check answers 503 too while Redis is down', async (t) => {
  const redis = await startRedis(t)
  if (!redis?.owned) return
  const app = await build(t, { wsx: { redis: redis.url, namespace: 'outagelock', connectionRateLimit: false } })
  app.wsx.route({ url: '/ws', authenticate: [verifyJwt], actions: { 'x.y': action({ handler: async () => ({}) }) } })
  await app.ready()
  await redis.stop()
  const err = await connect(app, '/ws', { token: tokenFor(app, 'alice') }).then(() => null, (e: unknown) => e)
  t.equal((err as UpgradeRefusedError).statusCode, 503, 'an upgrade with a credential: 503, not the lock\'s 429')
  t.ok(Number((err as UpgradeRefusedError).headers['retry-after']) >= 1, 'with Retry-After')
})

t.test('fail-closed refusals of a client that waits retry_after never close it; Redis back: resync', async (t) => {
  const redis = await startRedis(t)
  if (!redis?.owned) return
  const app = await outageApp(t, redis.url, 'outageobey')
  const c = await connect(app, '/ws', { token: tokenFor(app, 'alice') })
  await c.next('socket.authorized')
  t.match(await c.request('x.send'), { ok: true })

  await redis.stop()
  // maxThrottledInARow is 2: five refusals, each waited out, keep the socket open
  for (let i = 0; i < 5; i++) {
    const reply = await c.request('x.send', undefined, { timeoutMs: 5000 })
    t.match(reply, { ok: false, error: { code: 'throttled' } }, `refusal ${i + 1} (fail closed)`)
    await sleep((reply.error?.retry_after ?? 1) * 1000) // real time: Redis is really down; its client reconnects on its own timers
  }
  await redis.restart()
  t.match(await c.next('socket.resync', 15_000), { data: { groups: ['room:outage'] } }, 'the same socket is told to resync')
  // the bus and the throttle store reconnect on their own schedules: a refusal right after
  // the resync is still a fail-closed one, and a client that waits it out gets through
  let after = await c.request('x.send', undefined, { timeoutMs: 5000 })
  for (let i = 0; i < 10 && after.ok === false; i++) {
    t.match(after, { ok: false, error: { code: 'throttled' } }, 'a late refusal is still the fail-closed one')
    await sleep((after.error?.retry_after ?? 1) * 1000) // real time: as above
    after = await c.request('x.send', undefined, { timeoutMs: 5000 })
  }
  t.match(after, { ok: true }, 'and carries on')

  // the other side of the rule: messages sent before retry_after elapsed do count
  await redis.stop()
  t.match(await c.request('x.send', undefined, { timeoutMs: 5000 }), { ok: false, error: { code: 'throttled' } })
  c.send({ id: 'r1', action: 'x.send' })
  c.send({ id: 'r2', action: 'x.send' })
  t.equal((await c.closed()).code, 4429, 'two ignored retry_after in a row close 4429')
  await redis.restart()
})

t.test('the typed client, retrying as fast as it likes, rides out a 30 s outage on the same socket', async (t) => {
  const redis = await startRedis(t)
  if (!redis?.owned) return
  const app = await outageApp(t, redis.url, 'outage30')
  const client = createClient(`${await baseUrl(app)}/ws`, { WebSocket, token: tokenFor(app, 'alice'), requestTimeoutMs: 5000 })
  t.teardown(() => client.close())
  await client.ready()
  const closes: unknown[] = []
  const resyncs: unknown[] = []
  client.on('close', (e) => closes.push(e))
  client.on('resync', (e) => resyncs.push(e))
  t.match(await client.request('x.send', {}), { done: true })

  await redis.stop()
  const until = Date.now() + 30_000
  let refused = 0
  // an app loop that retries at once: the client itself holds requests until retry_after elapsed
  while (Date.now() < until) {
    try {
      await client.request('x.send', {})
    } catch (err) {
      if (!(err instanceof WsxClientError) || err.code !== 'throttled') throw err
      refused++
    }
  }
  await redis.restart()
  t.ok(refused >= 10, `refused ${refused} times during the outage`)
  await eventually(() => resyncs.length, (n) => n > 0, { what: 'socket.resync', timeout: 15_000, interval: 100 })
  t.strictSame(resyncs, [{ groups: ['room:outage'] }], 'got socket.resync')
  t.strictSame(closes, [], 'the socket never closed')
  const after = await eventually(() => client.request('x.send', {}), { what: 'a request to pass again', timeout: 20_000, interval: 100 })
  t.match(after, { done: true }, 'requests pass again')
})
