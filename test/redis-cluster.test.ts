// Redis Cluster: two app instances on a 3-master cluster the test creates itself, one given
// an ioredis 5 `Cluster`, the other an ioredis 6 `Cluster`, act as one server (throttles,
// locks, presence, broadcast, channels, user push and disconnect) with no CROSSSLOT error;
// when the cluster drops the subscriber connections, both get socket.resync and carry on.
import t from 'tap'
import { Writable } from 'node:stream'
import { Cluster as Cluster5 } from 'ioredis'
import { Cluster as Cluster6 } from 'ioredis6'
import { startRedisCluster, killSubscribers } from './helpers/redis-topology.js'
import { authed, checkSharedState, sharedApp } from './helpers/shared-state.js'
import { eventually } from './helpers/eventually.js'

t.setTimeout(120_000)

t.test('two instances on a 3-master Redis Cluster act as one server', async (t) => {
  const cluster = await startRedisCluster(t)
  if (!cluster) return
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, cb) { lines.push(chunk.toString()); cb() } })
  const logger = { level: 'warn', stream }
  const mine5 = new Cluster5(cluster.nodes, { lazyConnect: true })
  const mine6 = new Cluster6(cluster.nodes, { lazyConnect: true })
  t.teardown(() => { mine5.disconnect(); mine6.disconnect() })
  const a = await sharedApp(t, mine5, 'clu', {}, undefined, { logger })
  const b = await sharedApp(t, mine6, 'clu', {}, undefined, { logger })

  t.test('a group with history (Redis Streams) numbers events across instances', async (t) => {
    const alice = await authed(a, 'hist', 'alice')
    const bob = await authed(b, 'hist', 'bob')
    let n = 0
    const crossed = async () => {
      const text = `history ${++n}`
      await alice.request('chat.send', { text })
      return bob.next((f) => f.action === 'chat.message' && (f.data as { text: string }).text === text, 1500).catch(() => null)
    }
    const event = await eventually(crossed, (f) => f !== null, { what: 'a history event from A on B', timeout: 10_000, interval: 50 })
    t.ok(event !== null && typeof (event as unknown as { offset?: unknown }).offset === 'number', `the event carries an offset: ${JSON.stringify(event)}`)
    t.notMatch(lines.join(''), /CROSSSLOT/, 'no CROSSSLOT from the history scripts')
    await alice.close()
    await bob.close()
  })

  t.test('the subscriber connections drop: socket.resync, then broadcasts flow again', async (t) => {
    const alice = await authed(a, 'resync', 'alice')
    const bob = await authed(b, 'resync', 'bob')
    const text = (n: number) => `before ${n}`
    let n = 0
    const crossed = async () => {
      const mine = text(++n)
      await alice.request('chat.send', { text: mine })
      return bob.next((f) => f.action === 'chat.message' && (f.data as { text: string }).text === mine, 500).then(() => true, () => false)
    }
    await t.resolves(eventually(crossed, { what: 'a broadcast from A on B', timeout: 5000, interval: 50 }), 'a broadcast crosses before')
    t.ok(await killSubscribers(cluster.nodes) >= 2, 'both instances\' subscriber connections were killed')
    t.match(await alice.next('socket.resync', 10_000), { data: { groups: ['room:resync'] } }, 'alice resyncs')
    t.match(await bob.next('socket.resync', 10_000), { data: { groups: ['room:resync'] } }, 'bob resyncs')
    await t.resolves(eventually(crossed, { what: 'a broadcast after the resync', timeout: 10_000, interval: 50 }), 'broadcasts flow again on the same sockets')
    await alice.close()
    await bob.close()
  })
  // last: the lock check leaves 127.0.0.1 locked for a few seconds in this namespace
  t.test('throttles, locks, presence, broadcast, channels, push and kick are shared', async (t) => {
    await checkSharedState(t, a, b, 'main')
  })

  t.test('keys live on several masters, and no script ever hit CROSSSLOT', async (t) => {
    const probe = new Cluster5(cluster.nodes)
    t.teardown(() => { probe.disconnect() })
    await new Promise((resolve) => probe.once('ready', resolve))
    const perNode = await Promise.all(probe.nodes('master').map(async (node) => (await node.keys('clu:*')).length + (await node.keys('{clu:*')).length))
    t.ok(perNode.filter((n) => n > 0).length >= 2, `keys per master: ${perNode.join(', ')}`)
    t.notMatch(lines.join(''), /CROSSSLOT|MOVED|failed/, 'no store error in the log')
  })
})
