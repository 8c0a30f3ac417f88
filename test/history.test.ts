// History and recovery (issue 12), on one instance in memory: offsets and epochs on the
// wire, recovery after a TCP reset with no duplicate and no reordering, positions older than
// the history, channels, bounds and bad input.
import { test } from 'tap'
import { Type, action, defineChannel } from '../index.js'
import { connect } from '../testing/index.js'
import { build, tokenFor, verifyJwt } from './helpers/build.js'
import { chatFrames, historyApp, joinRoom, resetConnection } from './helpers/history.js'
import { eventually } from './helpers/eventually.js'
import { fakeClock } from './helpers/fake-clock.js'

test('events of a history group carry group, offset and epoch', async (t) => {
  const app = await historyApp(t)
  const { client, joined, reply } = await joinRoom(app, '/ws/room/general', 'alice')
  const epoch = (joined.data as { epoch: string }).epoch
  t.match(joined.data, { group: 'room:general', offset: 0, epoch: String })
  t.match(reply, { ok: true, data: { group: 'room:general', recovered: true, offset: 0, epoch } })
  await app.wsx.broadcast('room:general', 'chat.message', { n: 1 })
  await app.wsx.broadcast('room:general', 'chat.message', { n: 2 })
  t.strictSame(await client.next('chat.message'), { action: 'chat.message', group: 'room:general', data: { n: 1 }, offset: 1, epoch })
  t.strictSame(await client.next('chat.message'), { action: 'chat.message', group: 'room:general', data: { n: 2 }, offset: 2, epoch })
})

test('a client dropped by a TCP reset recovers exactly the 50 events it missed, in order, then live ones', async (t) => {
  const app = await historyApp(t)
  const { client: first } = await joinRoom(app, '/ws/room/general', 'alice')
  await app.wsx.broadcast('room:general', 'chat.message', { n: 0 })
  const last = await first.next('chat.message')
  const position = { offset: last.offset as number, epoch: last.epoch as string }
  resetConnection(first)
  await eventually(() => app.wsx.connections.size === 0, { what: 'the server to see the reset' })
  for (let n = 1; n <= 50; n++) await app.wsx.broadcast('room:general', 'chat.message', { n })

  const { client, reply } = await joinRoom(app, '/ws/room/general', 'alice', position)
  t.match(reply, { ok: true, data: { group: 'room:general', recovered: true, offset: 51, epoch: position.epoch } })
  await eventually(() => chatFrames(client).length, (n) => n >= 50, { what: 'the replay' })
  await app.wsx.broadcast('room:general', 'chat.message', { n: 51 })
  await eventually(() => chatFrames(client).length, (n) => n >= 51, { what: 'the live event' })
  const got = chatFrames(client)
  t.strictSame(got.map((f) => (f.data as { n: number }).n), Array.from({ length: 51 }, (_, i) => i + 1), 'exactly the missed events, in order, then the live one')
  t.strictSame(got.map((f) => f.offset), Array.from({ length: 51 }, (_, i) => i + 2))
  const replyAt = client.frames.findIndex((f) => f.ok === true && (f.data as { group?: string })?.group === 'room:general')
  const firstEventAt = client.frames.findIndex((f) => f.action === 'chat.message')
  t.ok(replyAt < firstEventAt, 'the answer comes before the replay')
})

test('live events published during the recovery are neither lost, duplicated nor reordered', async (t) => {
  const app = await historyApp(t)
  for (let n = 1; n <= 20; n++) await app.wsx.broadcast('room:busy', 'chat.message', { n })
  const client = await connect(app, '/ws/room/busy', { token: tokenFor(app, 'alice') })
  const joined = await client.next('group.joined')
  const epoch = (joined.data as { epoch: string }).epoch
  // events keep coming while the server holds live frames for the recovery
  const publishing = (async () => { for (let n = 21; n <= 60; n++) await app.wsx.broadcast('room:busy', 'chat.message', { n }) })()
  const reply = await client.request('group.recover', { group: 'room:busy', offset: 5, epoch })
  await publishing
  t.match(reply, { ok: true, data: { recovered: true } })
  await eventually(() => chatFrames(client).length, (n) => n >= 55, { what: 'every event' })
  t.strictSame(chatFrames(client).map((f) => f.offset), Array.from({ length: 55 }, (_, i) => i + 6))
})

test('a position older than the history, or from another epoch, answers recovered: false', async (t) => {
  const app = await historyApp(t)
  const { client: first } = await joinRoom(app, '/ws/small/general', 'alice')
  await app.wsx.broadcast('small:general', 'chat.message', { n: 0 })
  const last = await first.next('chat.message')
  await first.close()
  for (let n = 1; n <= 50; n++) await app.wsx.broadcast('small:general', 'chat.message', { n })

  const old = await joinRoom(app, '/ws/small/general', 'alice', { offset: last.offset as number, epoch: last.epoch as string })
  t.match(old.reply, { ok: true, data: { group: 'small:general', recovered: false, offset: 51, epoch: last.epoch } })
  await app.wsx.broadcast('small:general', 'chat.message', { n: 51 })
  t.match(await old.client.next('chat.message'), { data: { n: 51 }, offset: 52 }, 'no replay: live events follow')

  const other = await joinRoom(app, '/ws/small/general', 'bob', { offset: 51, epoch: 'not-the-epoch' })
  t.match(other.reply, { ok: true, data: { recovered: false, offset: 52 } })
  const future = await joinRoom(app, '/ws/small/general', 'carol', { offset: 999, epoch: last.epoch as string })
  t.match(future.reply, { ok: true, data: { recovered: false } })
})

test('`last` replays the newest events (a page reload shows recent messages)', async (t) => {
  const app = await historyApp(t)
  for (let n = 1; n <= 30; n++) await app.wsx.broadcast('room:lobby', 'chat.message', { n })
  const client = await connect(app, '/ws/room/lobby', { token: tokenFor(app, 'alice') })
  await client.next('group.joined')
  const reply = await client.request('group.recover', { group: 'room:lobby', last: 5 })
  t.strictSame(reply.data, { group: 'room:lobby', epoch: (reply.data as { epoch: string }).epoch, offset: 30 })
  await eventually(() => chatFrames(client).length, (n) => n >= 5, { what: 'replay' })
  t.strictSame(chatFrames(client).map((f) => (f.data as { n: number }).n), [26, 27, 28, 29, 30])
})

test('a client that never answers group.joined gets live events after holdMs', async (t) => {
  const app = await historyApp(t)
  // the hold is a server timer armed at the join: on the fake clock it ends when the test
  // moves time past holdMs (1000 ms by default), not after a wall-clock wait
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  const client = await connect(app, '/ws/room/quiet', { token: tokenFor(app, 'alice') })
  await client.next('group.joined')
  await app.wsx.broadcast('room:quiet', 'chat.message', { n: 1 })
  await clock.tickAsync(999)
  await client.request('socket.ping') // a round trip: a released frame would be here by now
  t.equal(chatFrames(client).length, 0, 'held until holdMs')
  await clock.tickAsync(1)
  await eventually(() => chatFrames(client).length, (n) => n > 0, { what: 'the held event', timeout: 5000 })
  t.match(await client.next('chat.message'), { data: { n: 1 }, offset: 1 })
  t.match(await client.request('group.recover', { group: 'room:quiet', offset: 0, epoch: 'x' }), { ok: true, data: { recovered: false } },
    'too late to recover without reordering: the client refetches')
})

test('channel.subscribe with recover replays a channel subscription', async (t) => {
  const app = await historyApp(t)
  const { client: first } = await joinRoom(app, '/ws/room/general', 'alice')
  const sub = await first.request('channel.subscribe', { channel: 'feed', params: { topic: 'news' } })
  t.match(sub, { ok: true, data: { subscribed: true, offset: 0, epoch: String } })
  t.notOk('recovered' in (sub.data as object), 'recovered only when asked to recover')
  await app.wsx.publish('feed', { topic: 'news' }, 'feed.item', { n: 1 })
  const item = await first.next('feed.item')
  t.match(item, { channel: 'feed', params: { topic: 'news' }, data: { n: 1 }, offset: 1 })
  resetConnection(first)
  await eventually(() => app.wsx.connections.size === 0, { what: 'the reset' })
  for (let n = 2; n <= 11; n++) await app.wsx.publish('feed', { topic: 'news' }, 'feed.item', { n })

  const { client } = await joinRoom(app, '/ws/room/general', 'alice')
  const again = await client.request('channel.subscribe', { channel: 'feed', params: { topic: 'news' }, recover: { offset: 1, epoch: item.epoch } })
  t.match(again, { ok: true, data: { subscribed: true, recovered: true, offset: 11 } })
  await eventually(() => client.frames.filter((f) => f.action === 'feed.item').length >= 10, { what: 'replay' })
  t.strictSame(client.frames.filter((f) => f.action === 'feed.item').map((f) => (f.data as { n: number }).n), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11])

  const plain = await client.request('channel.subscribe', { channel: 'plain', params: { topic: 'x' }, recover: { offset: 1, epoch: 'e' } })
  t.strictSame(plain.data, { subscribed: true }, 'a channel without history ignores recover')
})

test('the replay is bounded by maxReplayBytes: too much to replay answers recovered: false', async (t) => {
  const app = await build(t, { wsx: { messageRateLimit: false } })
  app.wsx.group('big:*', { history: { size: 100, ttl: '5m', maxReplayBytes: 2048 } })
  app.wsx.route({ url: '/ws/big', authenticate: [verifyJwt], groups: () => 'big:one', actions: {} })
  await app.ready()
  const { client: first, joined } = await joinRoom(app, '/ws/big', 'alice')
  const epoch = (joined.data as { epoch: string }).epoch
  await first.close()
  for (let n = 1; n <= 10; n++) await app.wsx.broadcast('big:one', 'blob', { text: 'x'.repeat(500) })
  const { reply } = await joinRoom(app, '/ws/big', 'alice', { offset: 0, epoch })
  t.match(reply.data, { recovered: false, offset: 10 })
  const { reply: fits, client } = await joinRoom(app, '/ws/big', 'alice', { offset: 7, epoch })
  t.match(fits.data, { recovered: true, offset: 10 })
  await eventually(() => client.frames.filter((f) => f.action === 'blob').length >= 3, { what: 'replay' })
})

test('bad recovery requests get coded errors and lose nothing', async (t) => {
  const app = await historyApp(t)
  const { client } = await joinRoom(app, '/ws/room/general', 'alice')
  t.match(await client.request('group.recover', { group: 'room:other', offset: 0, epoch: 'e' }), { ok: false, error: { code: 'not_found' } })
  t.match(await client.request('group.recover', { group: 'bad group!' }), { ok: false, error: { code: 'validation_error', fields: { group: Array } } })
  t.match(await client.request('group.recover', { group: 'room:general', offset: -1, epoch: 'e' }), { ok: false, error: { code: 'validation_error', fields: { data: Array } } })
  t.match(await client.request('group.recover', { group: 'room:general', last: 0 }), { ok: false, error: { code: 'validation_error' } })
  t.match(await client.request('channel.subscribe', { channel: 'feed', params: { topic: 'a' }, recover: 'yes' }), { ok: false, error: { code: 'validation_error', fields: { recover: Array } } })
  await app.wsx.broadcast('room:general', 'chat.message', { n: 1 })
  t.match(await client.next('chat.message'), { data: { n: 1 }, offset: 1 }, 'still delivering')
  const anon = await connect(app, '/ws/room/general')
  await anon.next('socket.handshake')
  t.match(await anon.request('group.recover', { group: 'room:general', offset: 0, epoch: 'e' }), { ok: false, error: { code: 'not_authenticated' } })
})

test('history options are checked at boot', async (t) => {
  const app = await build(t)
  t.throws(() => app.wsx.group('room:*', { history: { size: 0, ttl: '5m' } }), { code: 'WSX_ERR_OPTS_INVALID' })
  t.throws(() => app.wsx.group('room:*', { history: { size: 10 } as never }), { code: 'WSX_ERR_OPTS_INVALID' })
  t.throws(() => app.wsx.group('room:*', { history: { size: 10, ttl: 'soon' } }), { code: 'WSX_ERR_OPTS_INVALID' })
  t.throws(() => app.wsx.group('room:*', { history: { size: 10, ttl: '1m', extra: 1 } as never }), { code: 'WSX_ERR_OPTS_INVALID' })
  t.throws(() => app.wsx.group('bad group', { history: { size: 10, ttl: '1m' } }), { code: 'WSX_ERR_GROUP_NAME' })
  app.wsx.group('room:*', { history: { size: 10, ttl: '1m' } })
  t.throws(() => app.wsx.group('room:*', { history: { size: 10, ttl: '1m' } }), { code: 'WSX_ERR_OPTS_INVALID' }, 'declared twice')

  const custom = await build(t, { wsx: { emitter: (await import('mqemitter')).default() as never } })
  t.throws(() => custom.wsx.group('room:*', { history: { size: 10, ttl: '1m' } }), { code: 'WSX_ERR_HISTORY_UNSUPPORTED' })
  t.throws(() => custom.wsx.route({
    url: '/ws',
    authenticate: [verifyJwt],
    channels: { feed: defineChannel({ params: Type.Object({}), history: { size: 10, ttl: '1m' } }) },
    actions: {}
  }), { code: 'WSX_ERR_HISTORY_UNSUPPORTED' })
})

test('frames held for a recovery count against the outbound buffer: a client that never answers and falls behind is closed 1013', async (t) => {
  const app = await build(t, { wsx: { messageRateLimit: false, maxBufferedBytes: 4096 } })
  app.wsx.group('room:*', { history: { size: 100, ttl: '5m', holdMs: 60_000 } })
  app.wsx.route({ url: '/ws/:room', authenticate: [verifyJwt], groups: (conn) => `room:${String(conn.params.room)}`, actions: {} })
  await app.ready()
  const client = await connect(app, '/ws/a', { token: tokenFor(app, 'alice') })
  await client.next('group.joined')
  for (let n = 0; n < 20; n++) await app.wsx.broadcast('room:a', 'blob', { text: 'x'.repeat(400) })
  t.equal((await client.closed()).code, 1013)
  t.equal(client.frames.filter((f) => f.action === 'blob').length, 0, 'nothing was sent while held')
})

test('leaving a group while its frames are held drops them', async (t) => {
  const app = await build(t, { wsx: { messageRateLimit: false } })
  app.wsx.group('room:*', { history: { size: 100, ttl: '5m', holdMs: 300 } })
  app.wsx.route({
    url: '/ws',
    authenticate: [verifyJwt],
    actions: {
      'room.join': action({ async handler (_msg, conn) { await conn.join('room:x'); return {} } }),
      'room.leave': action({ async handler (_msg, conn) { await conn.leave('room:x'); return {} } })
    }
  })
  await app.ready()
  const client = await connect(app, '/ws', { token: tokenFor(app, 'alice') })
  await client.next('socket.authorized')
  // the hold's timer is armed at the join, on the fake clock: the test moves time past holdMs
  const clock = fakeClock(t, ['setTimeout', 'clearTimeout'])
  t.match(await client.request('room.join'), { ok: true })
  t.match(await client.next('group.joined'), { data: { group: 'room:x', offset: 0 } })
  await app.wsx.broadcast('room:x', 'chat.message', { n: 1 })
  t.match(await client.request('room.leave'), { ok: true })
  await clock.tickAsync(500)
  await client.request('socket.ping') // a round trip: a released frame would be here by now
  t.equal(client.frames.filter((f) => f.action === 'chat.message').length, 0, 'the held event of a left group is not sent')
  t.match(await client.request('room.join'), { ok: true })
  await client.next('group.joined')
  t.match(await client.request('group.recover', { group: 'room:x', last: 5 }), { ok: true, data: { offset: 1 } })
  t.match(await client.next('chat.message'), { data: { n: 1 }, offset: 1 }, 'it is still in the history')
})

test('AsyncAPI documents the history extension', async (t) => {
  const app = await historyApp(t)
  const doc = app.wsx.asyncapi() as { operations: Record<string, unknown>, channels: Record<string, { messages: Record<string, { payload: { properties: Record<string, unknown>, required: string[] } }>, 'x-wsx-channels': Array<{ name: string, history?: object }> }> }
  const ops = Object.keys(doc.operations)
  t.ok(ops.some((k) => k.endsWith('.group.recover')), 'group.recover')
  t.ok(ops.some((k) => k.endsWith('.group.joined')), 'group.joined')
  const channel = Object.values(doc.channels)[0]!
  t.match(channel['x-wsx-channels'].find((c) => c.name === 'feed'), { history: { size: 100, ttl_ms: 300_000, max_replay: 100 } })
  t.notOk(channel['x-wsx-channels'].find((c) => c.name === 'plain')?.history)
  t.ok('recover' in (channel.messages['channel.subscribe.request']!.payload.properties.data as { properties: object }).properties)
})

test('app.wsx.history reads the newest events of a group or a channel (for a refetch endpoint)', async (t) => {
  const app = await historyApp(t)
  t.strictSame(await app.wsx.history('room:empty'), { epoch: (await app.wsx.history('room:empty')).epoch, offset: 0, events: [] })
  for (let n = 1; n <= 5; n++) await app.wsx.broadcast('room:general', 'chat.message', { n })
  const h = await app.wsx.history('room:general', { last: 2 })
  t.strictSame(h.events, [{ offset: 4, action: 'chat.message', data: { n: 4 } }, { offset: 5, action: 'chat.message', data: { n: 5 } }])
  t.equal(h.offset, 5)
  await app.wsx.publish('feed', { topic: 'news' }, 'feed.item', { n: 1 })
  t.match(await app.wsx.history({ channel: 'feed', params: { topic: 'news' } }), { offset: 1, events: [{ offset: 1, action: 'feed.item', data: { n: 1 } }] })
  await t.rejects(app.wsx.history('nohistory:x'), { code: 'WSX_ERR_NOT_READY' })
  await t.rejects(app.wsx.history({ channel: 'plain', params: { topic: 'x' } }), { code: 'WSX_ERR_NOT_READY' })
  await t.rejects(app.wsx.history({ channel: 'feed', params: { topic: 1 } }), { code: 'WSX_ERR_CHANNEL_INVALID' })
  await t.rejects(app.wsx.history('room:general', { last: 0 }), { code: 'WSX_ERR_OPTS_INVALID' })
  await t.rejects(app.wsx.history('bad group'), { code: 'WSX_ERR_GROUP_NAME' })
})
