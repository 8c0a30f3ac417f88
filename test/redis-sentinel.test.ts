// Sentinel: one master, one replica and one Sentinel started by the test. One app gets
// the Sentinel options, the other an ioredis 6 client built with them. The master is
// killed; Sentinel promotes the replica; clients stay connected, get socket.resync, and
// broadcasts and throttles work again without a restart.
import t from 'tap'
import { Redis as Redis6 } from 'ioredis6'
import { startSentinel } from './helpers/redis-topology.js'
import { authed, sharedApp } from './helpers/shared-state.js'
import { eventually } from './helpers/eventually.js'

t.setTimeout(120_000)

t.test('a Sentinel failover keeps clients connected and ends in socket.resync', async (t) => {
  const sentinel = await startSentinel(t)
  if (!sentinel) return
  const mine = new Redis6({ sentinels: sentinel.sentinels, name: sentinel.name, lazyConnect: true })
  t.teardown(() => { mine.disconnect() })
  const a = await sharedApp(t, { sentinels: sentinel.sentinels, name: sentinel.name }, 'sent')
  const b = await sharedApp(t, mine, 'sent')
  const alice = await authed(a, 'general', 'alice')
  const bob = await authed(b, 'general', 'bob')
  let n = 0
  const crossed = async () => {
    const text = `message ${++n}`
    await alice.request('chat.send', { text }).catch(() => null)
    return bob.next((f) => f.action === 'chat.message' && (f.data as { text: string }).text === text, 500).then(() => true, () => false)
  }
  await t.resolves(eventually(crossed, { what: 'a broadcast from A on B', timeout: 5000, interval: 50 }), 'a broadcast crosses instances through the master')
  t.match(await alice.request('x.send'), { ok: true }, 'the shared throttle counts on the master')

  await sentinel.killMasterAndFailover()
  t.match(await alice.next('socket.resync', 20_000), { data: { groups: ['room:general'] } }, 'alice resyncs')
  t.match(await bob.next('socket.resync', 20_000), { data: { groups: ['room:general'] } }, 'bob resyncs')
  await t.resolves(eventually(crossed, { what: 'a broadcast after the failover', timeout: 15_000, interval: 50 }), 'broadcasts flow again, through the promoted replica')
  const sent = await eventually(() => bob.request('x.send'), (f) => f.ok === true, { what: 'a counted send on the new master', timeout: 10_000, interval: 50 })
  t.match(sent, { ok: true }, 'throttles count again on the new master')
  t.equal(alice.frames.filter((f) => f.action === 'socket.resync').length, 1, 'one resync, no reconnect needed')
  await alice.close()
  await bob.close()
})
