// The demo (examples/chat) with WSX_DEMO_REDIS_URL: two demo processes on one Redis act as one server.
import { test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { connectUrl } from '../testing/index.js'
import { startRedis } from './helpers/redis.js'
import { startDemo } from './helpers/demo-process.js'

test('two demo processes on one Redis act as one server', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const env = { WSX_DEMO_REDIS_URL: redis.url, WSX_DEMO_SECRET: 'cluster-test-secret-cluster-test-secret' }
  const [one, two] = await Promise.all([startDemo(t, env), startDemo(t, env)])

  const alice = await connectUrl(`${one.ws}/ws/chat/lobby`, { token: await one.login('alice') })
  const bob = await connectUrl(`${two.ws}/ws/chat/lobby`, { token: await two.login('bob') })
  await alice.next('socket.authorized')
  await bob.next('socket.authorized')
  await sleep(150) // real time: two demo processes and a real Redis; no clock of ours reaches them

  t.match(await alice.request('chat.send', { text: 'hi bob' }), { ok: true, data: { user: 'alice', text: 'hi bob' } })
  // rooms keep history: events also carry group, offset and epoch
  t.match(await bob.next('chat.message', 5000), { action: 'chat.message', group: 'room:lobby', data: { user: 'alice', text: 'hi bob', room: 'lobby' }, offset: Number })
  await sleep(150) // real time: what must not arrive would come over Redis, on no clock of ours
  t.equal(bob.frames.filter((f) => f.action === 'chat.message').length, 1, 'exactly once')

  t.strictSame((await alice.request('room.presence')).data, { users: ['alice', 'bob'] })
  t.strictSame((await bob.request('room.presence')).data, { users: ['alice', 'bob'] })

  const admin = await connectUrl(`${one.ws}/ws/chat/lobby`, { token: await one.login('admin') })
  await admin.next('socket.authorized')
  // the close is what counts: the returned count is only the acknowledgements that arrived
  // within a short window, which a loaded machine can miss (as in test/helpers/shared-state.ts)
  t.match(await admin.request('room.kick', { user: 'bob' }), { ok: true })
  t.equal((await bob.closed()).code, 4403, 'a kick on one process closes the socket on the other')

  // a Redis outage crashes neither process; its end brings socket.resync
  const carol = await connectUrl(`${two.ws}/ws/chat/lobby`, { token: await two.login('carol') })
  await carol.next('socket.authorized')
  await sleep(150) // real time: as above, separate processes
  await redis.stop()
  await sleep(500) // real time: a real outage the processes must notice
  await redis.restart()
  t.match(await carol.next('socket.resync', 10_000), { data: { groups: ['room:lobby'] } })
  t.match(await alice.next('socket.resync', 10_000), { data: { groups: ['room:lobby'] } })
  await sleep(300) // real time: resubscribing after the resync, in other processes
  t.match(await alice.request('chat.send', { text: 'back' }), { ok: true })
  t.match(await carol.next('chat.message', 5000), { data: { text: 'back' } })
  t.equal(one.proc.exitCode, null, 'first process alive')
  t.equal(two.proc.exitCode, null, 'second process alive')
  for (const c of [alice, admin, carol]) await c.close()
})
