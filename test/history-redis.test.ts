// History on Redis Streams (issue 12), with one and with two instances on a private
// redis-server: recovery after a TCP reset, positions older than the history, a restart
// that loses the history (new epoch), and outages healed from the history without
// socket.resync.
import { test, type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { startRedis, type RedisHandle } from './helpers/redis.js'
import { chatFrames, historyApp, joinRoom, resetConnection } from './helpers/history.js'
import { eventually } from './helpers/eventually.js'
import type { TestClient } from '../testing/index.js'

async function instances (t: Test, n: number): Promise<{ redis: RedisHandle, apps: FastifyInstance[] } | null> {
  const redis = await startRedis(t)
  if (!redis) return null
  const apps: FastifyInstance[] = []
  for (let i = 0; i < n; i++) apps.push(await historyApp(t, { redis: redis.url, namespace: 'histtest' }))
  return { redis, apps }
}

async function dropAndRecover (t: Test, publisher: FastifyInstance, first: FastifyInstance, second: FastifyInstance, watcher?: TestClient): Promise<void> {
  const { client: alice } = await joinRoom(first, '/ws/room/general', 'alice')
  await publisher.wsx.broadcast('room:general', 'chat.message', { n: 0 })
  const last = await alice.next('chat.message', 5000)
  const position = { offset: last.offset as number, epoch: last.epoch as string }
  resetConnection(alice)
  await eventually(() => ![...first.wsx.connections].some((c) => c.user !== null && (c.user as { sub: string }).sub === 'alice'), { what: 'the reset' })
  for (let n = 1; n <= 50; n++) await publisher.wsx.broadcast('room:general', 'chat.message', { n })

  const { client, reply } = await joinRoom(second, '/ws/room/general', 'alice', position)
  t.match(reply, { ok: true, data: { group: 'room:general', recovered: true, offset: position.offset + 50, epoch: position.epoch } })
  await eventually(() => chatFrames(client).length, (n) => n >= 50, { what: 'the replay' })
  await publisher.wsx.broadcast('room:general', 'chat.message', { n: 51 })
  await eventually(() => chatFrames(client).length, (n) => n >= 51, { what: 'the live event' })
  const got = chatFrames(client)
  t.strictSame(got.map((f) => (f.data as { n: number }).n), Array.from({ length: 51 }, (_, i) => i + 1), 'exactly the 50 missed, in order, then live')
  t.strictSame(got.map((f) => f.offset), Array.from({ length: 51 }, (_, i) => position.offset + 1 + i))
  if (watcher) {
    await eventually(() => chatFrames(watcher).length, (n) => n >= 52, { what: 'the watcher' })
    t.strictSame(chatFrames(watcher).map((f) => f.offset), Array.from({ length: 52 }, (_, i) => i + 1), 'a member on the other instance saw every offset once, in order')
  }
}

test('one instance on Redis: a reset client recovers the 50 events it missed', async (t) => {
  const setup = await instances(t, 1)
  if (!setup) return
  const [a] = setup.apps as [FastifyInstance]
  await dropAndRecover(t, a, a, a)
  const keys = (await setup.redis.client().keys('histtest:{*')).sort()
  t.strictSame(keys, ['histtest:{room:general}:h', 'histtest:{room:general}:m'], 'one stream and one meta hash per group, hash-tagged')
  t.ok(await setup.redis.client().pttl('histtest:{room:general}:h') > 0, 'the stream expires')
})

test('two instances on Redis: published on one, recovered on the other', async (t) => {
  const setup = await instances(t, 2)
  if (!setup) return
  const [a, b] = setup.apps as [FastifyInstance, FastifyInstance]
  const { client: watcher } = await joinRoom(b, '/ws/room/general', 'bob')
  await dropAndRecover(t, b, a, b, watcher)
})

test('Redis: a position older than the trimmed history answers recovered: false', async (t) => {
  const setup = await instances(t, 2)
  if (!setup) return
  const [a, b] = setup.apps as [FastifyInstance, FastifyInstance]
  const { client: first } = await joinRoom(a, '/ws/small/general', 'alice')
  await b.wsx.broadcast('small:general', 'chat.message', { n: 0 })
  const last = await first.next('chat.message', 5000)
  await first.close()
  for (let n = 1; n <= 50; n++) await b.wsx.broadcast('small:general', 'chat.message', { n })
  const { reply, client } = await joinRoom(b, '/ws/small/general', 'alice', { offset: last.offset as number, epoch: last.epoch as string })
  t.match(reply, { ok: true, data: { recovered: false, offset: 51, epoch: last.epoch } })
  await a.wsx.broadcast('small:general', 'chat.message', { n: 51 })
  t.match(await client.next('chat.message', 5000), { data: { n: 51 }, offset: 52 }, 'live events follow, no replay')
})

test('Redis restart without persistence: a new epoch, socket.resync, and old positions do not recover', async (t) => {
  const setup = await instances(t, 2)
  if (!setup) return
  const { redis } = setup
  if (!redis.owned) { t.comment('needs a private redis-server (REDIS_URL given): skipped'); return }
  const [a, b] = setup.apps as [FastifyInstance, FastifyInstance]
  const { client: alice, joined } = await joinRoom(a, '/ws/room/general', 'alice')
  const { client: bob } = await joinRoom(b, '/ws/room/general', 'bob')
  const before = (joined.data as { epoch: string }).epoch
  await a.wsx.broadcast('room:general', 'chat.message', { n: 1 })
  await bob.next('chat.message', 5000)

  await redis.restart()
  t.match(await alice.next('socket.resync', 15_000), { data: { groups: ['room:general'] } })
  t.match(await bob.next('socket.resync', 15_000), { data: { groups: ['room:general'] } })
  await eventually(() => a.wsx.stats().bus.up && b.wsx.stats().bus.up, { what: 'both buses up', timeout: 15_000 })
  // refused until the history store is reachable again
  await eventually(() => a.wsx.broadcast('room:general', 'chat.message', { n: 2 }).then(() => true), { what: 'a broadcast to be accepted', timeout: 15_000, interval: 100 })
  const after = await bob.next('chat.message', 5000)
  t.not(after.epoch, before, 'the epoch changed')
  t.equal(after.offset, 1, 'offsets start again')
  const { reply } = await joinRoom(b, '/ws/room/general', 'carol', { offset: 1, epoch: before })
  t.match(reply.data, { recovered: false, epoch: after.epoch })
})

/** alice on a, bob on b, both in room:general with every event up to 5 received. */
async function twoMembers (t: Test) {
  const setup = await instances(t, 2)
  if (!setup) return null
  const [a, b] = setup.apps as [FastifyInstance, FastifyInstance]
  const { client: alice } = await joinRoom(a, '/ws/room/general', 'alice')
  const { client: bob } = await joinRoom(b, '/ws/room/general', 'bob')
  for (let n = 1; n <= 5; n++) await a.wsx.broadcast('room:general', 'chat.message', { n })
  await eventually(() => chatFrames(alice).length === 5 && chatFrames(bob).length === 5, { what: 'the first events' })
  return { ...setup, a, b, alice, bob }
}

function assertHealed (t: Test, clients: TestClient[], top: number): void {
  for (const client of clients) {
    t.strictSame(chatFrames(client).map((f) => f.offset), Array.from({ length: top }, (_, i) => i + 1), 'every offset once, in order')
    t.equal(client.frames.filter((f) => f.action === 'socket.resync').length, 0, 'no socket.resync')
  }
}

test('Redis: subscriber links killed while events are published heal from the history', async (t) => {
  const setup = await twoMembers(t)
  if (!setup) return
  const { redis, a, b, alice, bob } = setup
  await redis.client().client('KILL', 'TYPE', 'pubsub')
  // published while both instances' subscriber links are down: stored, not received
  for (let n = 6; n <= 25; n++) await a.wsx.broadcast('room:general', 'chat.message', { n })
  await eventually(() => chatFrames(alice).length >= 25 && chatFrames(bob).length >= 25, { what: 'healed', timeout: 15_000 })
  await eventually(() => a.wsx.stats().bus.up && b.wsx.stats().bus.up, { what: 'both buses up', timeout: 15_000 })
  await a.wsx.broadcast('room:general', 'chat.message', { n: 26 })
  await eventually(() => chatFrames(alice).length >= 26 && chatFrames(bob).length >= 26, { what: 'live again' })
  assertHealed(t, [alice, bob], 26)
})

test('Redis: a frozen Redis (an outage shorter than the history) heals with no socket.resync', async (t) => {
  const setup = await twoMembers(t)
  if (!setup) return
  const { redis, a, b, alice, bob } = setup
  if (!redis.owned) { t.comment('needs a private redis-server (REDIS_URL given): skipped'); return }
  redis.freeze()
  // publishes fail or time out while frozen; a timed-out one may still run at the thaw
  const during = Promise.allSettled([6, 7, 8].map((n) => a.wsx.broadcast('room:general', 'chat.message', { n })))
  await eventually(() => !a.wsx.stats().bus.up && !b.wsx.stats().bus.up, { what: 'the probe to see the outage', timeout: 15_000 })
  redis.thaw()
  await during
  await eventually(() => a.wsx.stats().bus.up && b.wsx.stats().bus.up, { what: 'both buses up', timeout: 15_000 })
  let n = 100
  await eventually(() => a.wsx.broadcast('room:general', 'chat.message', { n: n++ }).then(() => true), { what: 'a broadcast to be accepted', timeout: 15_000, interval: 100 })
  const top = async () => Number(await redis.client().hget('histtest:{room:general}:m', 'top'))
  const last = await top()
  await eventually(() => chatFrames(alice).length >= last && chatFrames(bob).length >= last, { what: 'every stored event delivered', timeout: 15_000 })
  await new Promise((resolve) => setTimeout(resolve, 300)) // real time: what must not arrive would come over Redis, on no clock of ours
  assertHealed(t, [alice, bob], last)
})

test('Redis, two instances: a channel subscription recovers on the other instance', async (t) => {
  const setup = await instances(t, 2)
  if (!setup) return
  const [a, b] = setup.apps as [FastifyInstance, FastifyInstance]
  const { client: first } = await joinRoom(a, '/ws/room/general', 'alice')
  const sub = await first.request('channel.subscribe', { channel: 'feed', params: { topic: 'news' } })
  t.match(sub.data, { subscribed: true, offset: 0 })
  await b.wsx.publish('feed', { topic: 'news' }, 'feed.item', { n: 1 })
  const item = await first.next('feed.item', 5000)
  t.match(item, { channel: 'feed', offset: 1 })
  await first.close()
  for (let n = 2; n <= 6; n++) await a.wsx.publish('feed', { topic: 'news' }, 'feed.item', { n })
  const { client } = await joinRoom(b, '/ws/room/general', 'alice')
  t.match(await client.request('channel.subscribe', { channel: 'feed', params: { topic: 'news' }, recover: { offset: 1, epoch: item.epoch } }),
    { ok: true, data: { subscribed: true, recovered: true, offset: 6, epoch: item.epoch } })
  await eventually(() => client.frames.filter((f) => f.action === 'feed.item').length >= 5, { what: 'replay' })
  t.strictSame(client.frames.filter((f) => f.action === 'feed.item').map((f) => f.offset), [2, 3, 4, 5, 6])
})

test('Redis stopped: a broadcast to a history group rejects with a coded error, and a recovery answers recovered: false', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  if (!redis.owned) { t.comment('needs a private redis-server (REDIS_URL given): skipped'); return }
  // presence off: its own Redis write would fail the join first
  const a = await historyApp(t, { redis: redis.url, namespace: 'histtest', presence: false })
  const { client, joined } = await joinRoom(a, '/ws/room/general', 'alice')
  const epoch = (joined.data as { epoch: string }).epoch
  await redis.stop()
  await t.rejects(a.wsx.broadcast('room:general', 'chat.message', { n: 1 }), { code: 'WSX_ERR_BUS_UNAVAILABLE' })
  // the join waits for the bus acknowledgement (up to 2 s) before the history is read
  t.match(await client.request('channel.subscribe', { channel: 'feed', params: { topic: 'x' }, recover: { offset: 0, epoch } }, { timeoutMs: 10_000 }),
    { ok: true, data: { subscribed: true, recovered: false } }, 'the history cannot be read: no position, refetch')
})
