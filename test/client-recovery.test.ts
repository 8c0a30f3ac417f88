// The typed client resumes by itself (issue 12): against a real fastify-wsx server with
// history, a client whose socket is dropped reconnects, recovers its route group and its
// channel subscription from its last positions, and says so with a `recovery` event.
import { test, type Test } from 'tap'
import { WebSocket } from 'ws'
import type { FastifyInstance } from 'fastify'
import { createClient, type RecoveryInfo, type WsxClient } from '../client/index.js'
import { defineRoute, Type, defineChannel, action } from '../index.js'
import { build, tokenFor, verifyJwt } from './helpers/build.js'
import { eventually } from './helpers/eventually.js'
import { baseUrl } from '../testing/index.js'

const feedRoute = defineRoute({
  url: '/ws/:room',
  authenticate: [verifyJwt],
  groups: (conn) => `room:${String(conn.params.room)}`,
  events: { 'chat.message': Type.Object({ n: Type.Integer() }) },
  channels: {
    feed: defineChannel({
      params: Type.Object({ topic: Type.String() }),
      events: { 'feed.item': Type.Object({ n: Type.Integer() }) },
      history: { size: 100, ttl: '5m' }
    })
  },
  actions: { 'who.ami': action({ handler: async (_msg, conn) => conn.user.sub }) }
})

async function server (t: Test): Promise<FastifyInstance> {
  const app = await build(t)
  app.wsx.group('room:*', { history: { size: 100, ttl: '5m' } })
  app.wsx.group('tiny:*', { history: { size: 5, ttl: '5m' } })
  app.wsx.route(feedRoute)
  app.wsx.route({ url: '/ws/tiny/:room', authenticate: [verifyJwt], groups: (conn) => `tiny:${String(conn.params.room)}`, actions: {} })
  await app.ready()
  return app
}

function client (t: Test, url: string, token: string, extra: { recent?: number } = {}): WsxClient<typeof feedRoute> {
  // a fixed reconnect delay: the test publishes while the client is away
  const c = createClient<typeof feedRoute>(url, { token, WebSocket: WebSocket as never, reconnect: { minDelayMs: 400, maxDelayMs: 400, jitter: 0 }, ...extra })
  t.teardown(() => c.close())
  return c
}

/** Drops every server-side socket of the app without a close frame (the client sees 1006). */
function dropAll (app: FastifyInstance): void {
  for (const conn of app.wsx.connections) conn.socket.terminate()
}

test('after a dropped connection the client recovers its group and channel, in order, and reports it', async (t) => {
  const app = await server(t)
  const url = (await baseUrl(app)).replace('http', 'ws') + '/ws/general'
  const c = client(t, url, tokenFor(app, 'alice'))
  const messages: number[] = []
  const items: number[] = []
  const recoveries: RecoveryInfo[] = []
  c.on('chat.message', (m, meta) => { messages.push(m.n); t.equal(meta.group, 'room:general') })
  c.on('recovery', (info) => recoveries.push(info))
  await c.ready()
  await c.subscribe('feed', { topic: 'news' }, (e) => { items.push(e.data.n) })
  await eventually(() => c.position({ group: 'room:general' }) !== undefined, { what: 'the group answered' })
  await app.wsx.broadcast('room:general', 'chat.message', { n: 1 })
  await app.wsx.publish('feed', { topic: 'news' }, 'feed.item', { n: 1 })
  await eventually(() => messages.length === 1 && items.length === 1, { what: 'live events' })
  const before = c.position({ group: 'room:general' })!
  t.equal(before.offset, 1)

  const reconnecting = new Promise((resolve) => c.on('reconnecting', resolve))
  dropAll(app)
  await reconnecting
  for (let n = 2; n <= 51; n++) {
    await app.wsx.broadcast('room:general', 'chat.message', { n })
    await app.wsx.publish('feed', { topic: 'news' }, 'feed.item', { n })
  }
  await eventually(() => recoveries.length, (n) => n === 2, { what: 'the recovery' })
  await app.wsx.broadcast('room:general', 'chat.message', { n: 52 })
  await eventually(() => messages.length === 52 && items.length === 51, { what: 'everything' })
  t.strictSame(messages, Array.from({ length: 52 }, (_, i) => i + 1), 'group: every event once, in order')
  t.strictSame(items, Array.from({ length: 51 }, (_, i) => i + 1), 'channel: every event once, in order')
  const byKind = Object.fromEntries(recoveries.map((r) => [r.group ?? r.channel, r]))
  t.match(byKind['room:general'], { group: 'room:general', recovered: true, from: 1, offset: 51, epoch: before.epoch })
  t.match(byKind.feed, { channel: 'feed', params: { topic: 'news' }, recovered: true, from: 1, offset: 51 })
  t.strictSame(c.position({ group: 'room:general' }), { offset: 52, epoch: before.epoch })
})

test('too much missed: the client reports recovered: false and keeps receiving live events', async (t) => {
  const app = await server(t)
  const url = (await baseUrl(app)).replace('http', 'ws') + '/ws/tiny/x'
  const c = client(t, url, tokenFor(app, 'bob'))
  const messages: number[] = []
  const recoveries: RecoveryInfo[] = []
  c.on('chat.message', (m) => messages.push(m.n))
  c.on('recovery', (info) => recoveries.push(info))
  await eventually(() => c.position({ group: 'tiny:x' }) !== undefined, { what: 'the group answered' })
  await app.wsx.broadcast('tiny:x', 'chat.message', { n: 1 })
  await eventually(() => messages.length, (n) => n === 1, { what: 'live' })
  const reconnecting = new Promise((resolve) => c.on('reconnecting', resolve))
  dropAll(app)
  await reconnecting
  for (let n = 2; n <= 21; n++) await app.wsx.broadcast('tiny:x', 'chat.message', { n })
  await eventually(() => recoveries.length, (n) => n === 1, { what: 'the recovery answer' })
  t.match(recoveries[0], { group: 'tiny:x', recovered: false, offset: 21 })
  t.notOk('from' in recoveries[0]!, 'no position recovered from')
  await app.wsx.broadcast('tiny:x', 'chat.message', { n: 22 })
  await eventually(() => messages.includes(22), { what: 'live again' })
  t.strictSame(messages, [1, 22], 'nothing replayed: the app refetches')
  t.strictSame(c.position({ group: 'tiny:x' })?.offset, 22)
})

test('recent: a fresh client shows the newest events of its group', async (t) => {
  const app = await server(t)
  for (let n = 1; n <= 30; n++) await app.wsx.broadcast('room:lobby', 'chat.message', { n })
  const url = (await baseUrl(app)).replace('http', 'ws') + '/ws/lobby'
  const c = client(t, url, tokenFor(app, 'carol'), { recent: 10 })
  const messages: number[] = []
  const recoveries: RecoveryInfo[] = []
  c.on('chat.message', (m) => messages.push(m.n))
  c.on('recovery', (info) => recoveries.push(info))
  await eventually(() => messages.length, (n) => n === 10, { what: 'recent events' })
  t.strictSame(messages, [21, 22, 23, 24, 25, 26, 27, 28, 29, 30])
  t.strictSame(recoveries, [], 'a fresh start is not a recovery')
  t.throws(() => createClient(url, { recent: 0, WebSocket: WebSocket as never }), TypeError)
})
