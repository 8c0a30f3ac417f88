// The Bus over the in-process mqemitter: local pub/sub, exclude-sender, group-name
// validation, control channel, late deliveries, refusal of foreign packets.
// The Redis behaviours (cross-instance, garbage, outages) are in bus-redis.test.ts.
import t, { type Test } from 'tap'
import { setImmediate as tick } from 'node:timers/promises'
import mqemitter from 'mqemitter'
import { Bus, type BusMeta } from '../lib/broadcast/bus.js'
import { BusUnavailableError } from '../lib/errors.js'
import type { WsxEmitter } from '../types/options.js'

interface Received { frame: string, meta: BusMeta }

function collector () {
  const got: Received[] = []
  const listener = (frame: string, meta: BusMeta) => { got.push({ frame, meta }) }
  return { got, listener }
}

function newBus (t: Test, opts: ConstructorParameters<typeof Bus>[0] = {}) {
  const bus = new Bus(opts)
  t.teardown(() => bus.close())
  return bus
}

t.test('local publish reaches every listener of the group, and only them', async (t) => {
  const bus = newBus(t)
  const a = collector()
  const b = collector()
  const other = collector()
  await bus.subscribe('room:1', a.listener)
  await bus.subscribe('room:1', b.listener)
  await bus.subscribe('room:2', other.listener)
  t.ok(bus.up, 'an in-process bus is always up')
  await bus.publish('room:1', '{"action":"chat.message","data":{}}')
  t.same(a.got, [{ frame: '{"action":"chat.message","data":{}}', meta: { group: 'room:1' } }])
  t.same(b.got, a.got)
  t.same(other.got, [], 'another group hears nothing')
  t.same(bus.groups().sort(), ['room:1', 'room:2'])
})

t.test('exclude travels as meta so the core can skip the sender', async (t) => {
  const bus = newBus(t)
  const a = collector()
  await bus.subscribe('room', a.listener)
  await bus.publish('room', 'x', { exclude: 'conn-42' })
  t.same(a.got, [{ frame: 'x', meta: { group: 'room', exclude: 'conn-42' } }])
  await t.rejects(bus.publish('room', 'x', { exclude: 42 as unknown as string }), TypeError)
  await t.rejects(bus.publish('room', { action: 'x' } as unknown as string), TypeError, 'frames are strings, never objects')
})

t.test('group names with wildcard or glob characters are refused everywhere', async (t) => {
  const bus = newBus(t)
  const { listener } = collector()
  const bad = ['#', '+', 'room/#', 'room/+', 'a/b', 'room*', 'room?', 'room[1]', 'room\\x', 'room 1', '', 'x'.repeat(129), 'é']
  for (const name of bad) {
    await t.rejects(bus.subscribe(name, listener), { code: 'WSX_ERR_GROUP_NAME' }, `subscribe ${JSON.stringify(name)}`)
    await t.rejects(bus.publish(name, 'x'), { code: 'WSX_ERR_GROUP_NAME' }, `publish ${JSON.stringify(name)}`)
    await t.rejects(bus.unsubscribe(name, listener), { code: 'WSX_ERR_GROUP_NAME' }, `unsubscribe ${JSON.stringify(name)}`)
  }
  await t.rejects(bus.subscribe(undefined as unknown as string, listener), { code: 'WSX_ERR_GROUP_NAME' })
  t.same(bus.groups(), [], 'nothing was subscribed')
  await bus.subscribe('ok:name_1.x-y@z', listener)
  t.throws(() => new Bus({ namespace: 'app/#' }), { code: 'WSX_ERR_OPTS_INVALID' }, 'the namespace is checked too')
})

t.test('the emitter topic is subscribed once per group and released by the last listener', async (t) => {
  const inner = mqemitter() as unknown as WsxEmitter
  const ons: string[] = []
  const offs: string[] = []
  // a real mqemitter, observed: counts what the bus asks of it
  const emitter: WsxEmitter = {
    on: (topic, l, cb) => { ons.push(topic); return inner.on(topic, l, cb) },
    removeListener: (topic, l, cb) => { offs.push(topic); inner.removeListener(topic, l, cb) },
    emit: (m, cb) => inner.emit(m, cb),
    close: (cb) => inner.close(cb)
  }
  const bus = newBus(t, { emitter, namespace: 'app' })
  const a = collector()
  const b = collector()
  await Promise.all([bus.subscribe('g', a.listener), bus.subscribe('g', b.listener)])
  t.same(ons, ['app/g/g'], 'one emitter subscription for two listeners')
  await bus.unsubscribe('g', a.listener)
  t.same(offs, [], 'still one listener left')
  await bus.publish('g', 'one')
  t.same(a.got.map(r => r.frame), [])
  t.same(b.got.map(r => r.frame), ['one'])
  await bus.unsubscribe('g', b.listener)
  await bus.unsubscribe('g', b.listener) // twice is harmless
  t.same(offs, ['app/g/g'])
  t.same(bus.groups(), [])
})

t.test('late deliveries after the last unsubscribe are dropped', async (t) => {
  const inner = mqemitter() as unknown as WsxEmitter
  const relays: Array<(m: Record<string, unknown> & { topic: string }, done: () => void) => void> = []
  const emitter: WsxEmitter = {
    on: (topic, l, cb) => { relays.push(l); return inner.on(topic, l, cb) },
    removeListener: (topic, l, cb) => inner.removeListener(topic, l, cb),
    emit: (m, cb) => inner.emit(m, cb),
    close: (cb) => inner.close(cb)
  }
  const bus = newBus(t, { emitter })
  const a = collector()
  await bus.subscribe('g', a.listener)
  const relay = relays[0]!
  await bus.unsubscribe('g', a.listener)
  // what an emitter still holding the old relay would deliver after the unsubscribe
  let done = false
  relay({ topic: 'wsx/g/g', v: 1, frame: 'late' }, () => { done = true })
  t.ok(done, 'the emitter callback is still called')
  // even with a new subscription in place, the old relay must not deliver
  const b = collector()
  await bus.subscribe('g', b.listener)
  relay({ topic: 'wsx/g/g', v: 1, frame: 'late' }, () => {})
  t.same(a.got, [])
  t.same(b.got, [])
})

t.test('packets the bus did not write are refused', async (t) => {
  const emitter = mqemitter() as unknown as WsxEmitter
  const bus = newBus(t, { emitter })
  const a = collector()
  await bus.subscribe('g', a.listener)
  const evil = Object.create({ frame: 'from the prototype', v: 1 })
  evil.topic = 'wsx/g/g'
  const bad: Array<Record<string, unknown> & { topic: string }> = [
    { topic: 'wsx/g/g', v: 1, frame: 42 },
    { topic: 'wsx/g/g', v: 1, frame: { action: 'x' } },
    { topic: 'wsx/g/g', frame: 'no version' },
    { topic: 'wsx/g/g', v: 2, frame: 'future version' },
    { topic: 'wsx/g/g', v: 1, frame: 'x', exclude: 7 },
    evil
  ]
  for (const m of bad) await new Promise<void>((resolve) => emitter.emit(m, () => resolve()))
  t.same(a.got, [], 'none delivered')
  await bus.publish('g', 'fine')
  t.same(a.got.map(r => r.frame), ['fine'])
})

t.test('a throwing listener neither stops the others nor escapes', async (t) => {
  const bus = newBus(t)
  const b = collector()
  await bus.subscribe('g', () => { throw new Error('boom') })
  await bus.subscribe('g', b.listener)
  await bus.publish('g', 'x')
  t.same(b.got.map(r => r.frame), ['x'])
})

t.test('__proto__ in a frame stays plain text', async (t) => {
  const bus = newBus(t)
  const a = collector()
  await bus.subscribe('g', a.listener)
  const frame = '{"action":"x","data":{"__proto__":{"isAdmin":true}}}'
  await bus.publish('g', frame)
  t.equal(a.got[0]?.frame, frame)
  t.equal(({} as Record<string, unknown>).isAdmin, undefined)
})

t.test('control channel: JSON payloads, parsed safely, handlers isolated', async (t) => {
  const logs: string[] = []
  const log = { debug () {}, warn (_o: object, m?: string) { logs.push(String(m)) }, error (_o: object, m?: string) { logs.push(String(m)) } }
  const emitter = mqemitter() as unknown as WsxEmitter
  const bus = newBus(t, { emitter, log })
  const got: unknown[] = []
  const handler = (p: Record<string, unknown>) => { got.push(p) }
  await bus.onControl('disconnect', handler)
  await bus.onControl('disconnect', async () => { throw new Error('async boom') })
  await bus.publishControl('disconnect', { user: 'alice' })
  t.same(got, [{ user: 'alice' }])
  // foreign control packets: prototype keys, not JSON, not an object
  for (const frame of ['{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', 'not json', '[1]', 'null']) {
    await new Promise<void>((resolve) => emitter.emit({ topic: 'wsx/c/disconnect', v: 1, frame }, () => resolve()))
  }
  t.same(got, [{ user: 'alice' }], 'none of them reached the handler')
  await tick()
  t.ok(logs.includes('wsx bus: control handler failed'), 'the async failure was logged')
  await t.rejects(bus.onControl('a/#', handler), { code: 'WSX_ERR_OPTS_INVALID' })
})

t.test('after close: publish rejects, nothing is delivered, close is idempotent', async (t) => {
  const bus = new Bus()
  const a = collector()
  await bus.subscribe('g', a.listener)
  const resyncs: string[][] = []
  bus.onResync((g) => resyncs.push(g))
  await bus.close()
  await bus.close()
  t.notOk(bus.up)
  await t.rejects(bus.publish('g', 'x'), BusUnavailableError)
  await t.rejects(bus.subscribe('g', a.listener), BusUnavailableError)
  t.same(a.got, [])
})
