// Groups and presence on one instance: membership, presence lists, presence events,
// group-name hardening and maxGroupsPerConnection.
import { test } from 'tap'
import { Type, action } from '../index.js'
import { connect } from '../testing/index.js'
import { build, tokenFor, verifyJwt } from './helpers/build.js'
import { eventually } from './helpers/eventually.js'
import type { FastifyInstance } from 'fastify'
import type { WsxPluginOptions } from '../types/options.js'

async function app (t: Parameters<typeof build>[0], wsx: WsxPluginOptions = {}): Promise<FastifyInstance> {
  const a = await build(t, { wsx })
  a.wsx.route({
    url: '/ws/:room',
    schema: { params: Type.Object({ room: Type.String() }) },
    authenticate: [verifyJwt],
    groups: (conn) => `room:${conn.params.room}`,
    actions: (action) => ({
      'group.join': action({
        request: Type.Object({ group: Type.String() }),
        handler: async (msg, conn) => { await conn.join(msg.data.group); return { groups: [...conn.groups] } }
      }),
      'group.leave': action({
        request: Type.Object({ group: Type.String() }),
        handler: async (msg, conn) => { await conn.leave(msg.data.group); return { groups: [...conn.groups] } }
      }),
      'room.presence': action({
        handler: async function (_msg, conn) { return this.wsx.presence(`room:${conn.params.room}`) }
      })
    })
  })
  return a
}

test('presence lists users with their connection counts, and forgets closed sockets', async (t) => {
  const a = await app(t)
  const alice1 = await connect(a, '/ws/lobby', { token: tokenFor(a, 'alice') })
  const alice2 = await connect(a, '/ws/lobby', { token: tokenFor(a, 'alice') })
  const bob = await connect(a, '/ws/lobby', { token: tokenFor(a, 'bob') })
  for (const c of [alice1, alice2, bob]) await c.next('socket.authorized')
  t.strictSame((await bob.request('room.presence')).data, [{ user: 'alice', connections: 2 }, { user: 'bob', connections: 1 }])
  await alice2.close()
  const expected = [{ user: 'alice', connections: 1 }, { user: 'bob', connections: 1 }]
  const after = await eventually(() => bob.request('room.presence'), (f) => JSON.stringify(f.data) === JSON.stringify(expected), { what: 'alice\'s second connection to leave' })
  t.strictSame(after.data, expected)
})

test('presence events, when enabled for a group, tell members who joined and left', async (t) => {
  const a = await app(t, { presence: { events: (group) => group.startsWith('room:') } })
  const alice = await connect(a, '/ws/lobby', { token: tokenFor(a, 'alice') })
  await alice.next('socket.authorized')
  t.strictSame(await alice.next('presence.join'), { action: 'presence.join', data: { group: 'room:lobby', user: 'alice' } })
  const bob = await connect(a, '/ws/lobby', { token: tokenFor(a, 'bob') })
  t.strictSame(await alice.next('presence.join'), { action: 'presence.join', data: { group: 'room:lobby', user: 'bob' } })
  await bob.close()
  t.strictSame(await alice.next('presence.leave'), { action: 'presence.leave', data: { group: 'room:lobby', user: 'bob' } })
  // groups without events stay quiet
  await alice.request('group.join', { group: 'quiet' })
  // real time: a presence event would come through the bus, after the reply; none must come
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(alice.frames.filter((f) => f.action === 'presence.join').length, 2)
})

test('presence can be limited to some groups, or turned off', async (t) => {
  const limited = await app(t, { presence: { groups: (group) => group === 'room:tracked' } })
  const c = await connect(limited, '/ws/untracked', { token: tokenFor(limited, 'alice') })
  await c.next('socket.authorized')
  t.strictSame((await c.request('room.presence')).data, [], 'an untracked group lists nobody')
  const off = await app(t, { presence: false })
  const d = await connect(off, '/ws/lobby', { token: tokenFor(off, 'alice') })
  await d.next('socket.authorized')
  t.match(await d.request('room.presence'), { ok: false, error: { code: 'server_error' } }, 'asking for presence when it is off is a server error, logged')
  await t.rejects(async () => off.wsx.presence('room:lobby'), { code: 'WSX_ERR_NOT_READY' })
})

test('group names cannot carry bus wildcards or Redis globs; groups per connection are capped', async (t) => {
  const a = await app(t, { maxGroupsPerConnection: 3 })
  const c = await connect(a, '/ws/lobby', { token: tokenFor(a, 'alice') })
  await c.next('socket.authorized')
  for (const bad of ['room/#', '#', 'room/+', 'a*', 'a?', 'a[b]', 'a\\b', '', 'x'.repeat(129), 'sp ace']) {
    t.match(await c.request('group.join', { group: bad }), { ok: false, error: { code: 'validation_error' } }, `refused: ${JSON.stringify(bad).slice(0, 20)}`)
  }
  t.strictSame((await c.request('group.join', { group: 'a:1' })).data, { groups: ['room:lobby', 'a:1'] })
  t.strictSame((await c.request('group.join', { group: 'a:2' })).data, { groups: ['room:lobby', 'a:1', 'a:2'] })
  const refused = await c.request('group.join', { group: 'a:3' })
  t.strictSame(refused.error, { code: 'validation_error', detail: 'A connection may be in 3 groups at most: leave one before joining "a:3".' },
    'a fourth group is refused with the cap, not as a bad name')
  t.strictSame((await c.request('group.leave', { group: 'a:1' })).data, { groups: ['room:lobby', 'a:2'] })
  await t.rejects(async () => a.wsx.broadcast('room/#', 'x', {}), { code: 'WSX_ERR_GROUP_NAME' })
})

test('events declared with a schema are checked before anything is sent', async (t) => {
  const a = await build(t)
  a.wsx.route({
    url: '/ws',
    authenticate: [verifyJwt],
    events: { 'score.changed': Type.Object({ score: Type.Integer() }) },
    groups: () => 'scores',
    actions: {
      'score.push': action({
        request: Type.Object({ score: Type.Unknown() }),
        handler: async function (msg, conn) {
          conn.send('score.changed', { score: msg.data.score })
          return { ok: true }
        }
      })
    }
  })
  const c = await connect(a, '/ws', { token: tokenFor(a, 'alice') })
  await c.next('socket.authorized')
  t.match(await c.request('score.push', { score: 3 }), { ok: true })
  t.strictSame(await c.next('score.changed'), { action: 'score.changed', data: { score: 3 } })
  t.match(await c.request('score.push', { score: 'three' }), { ok: false, error: { code: 'server_error' } }, 'a bad payload is a server error, not a frame')
  t.throws(() => a.wsx.broadcast('scores', 'score.changed', { score: 1.5 }), { code: 'WSX_ERR_EVENT_INVALID' })
  await a.wsx.broadcast('scores', 'score.changed', { score: 7 })
  t.strictSame(await c.next('score.changed'), { action: 'score.changed', data: { score: 7 } })
  t.equal(c.frames.filter((f) => f.action === 'score.changed').length, 2, 'nothing invalid went out')
  await a.wsx.broadcast('scores', 'undeclared.event', { anything: true })
  t.match(await c.next('undeclared.event'), { data: { anything: true } }, 'undeclared events are not checked')
})

test('one event name cannot carry two schemas', async (t) => {
  const a = await build(t)
  a.wsx.route({ url: '/a', events: { 'x.y': Type.Object({ a: Type.String() }) }, actions: { 'p.p': action({ public: true, handler: async () => ({}) }) } })
  t.throws(() => a.wsx.route({ url: '/b', events: { 'x.y': Type.Object({ b: Type.String() }) }, actions: { 'p.p': action({ public: true, handler: async () => ({}) }) } }), { code: 'WSX_ERR_EVENT_CONFLICT' })
})
