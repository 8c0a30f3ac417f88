// The registry's side of history: a hole in a group's offsets (an event lost between the
// store and this instance) is filled from the history before later events go out; a hole
// the history no longer covers is reported once, and later events still flow. Real bus
// (in-process mqemitter) and real in-memory history; the fan-out drops chosen offsets, as a
// lossy link would.
import { test } from 'tap'
import { Bus } from '../lib/broadcast/bus.js'
import { GroupRegistry, type Member } from '../lib/broadcast/groups.js'
import { MemoryHistory, compileHistory } from '../lib/broadcast/history.js'
import { historyHead } from '../lib/connection/envelope.js'
import { eventually } from './helpers/eventually.js'
import { fakeClock } from './helpers/fake-clock.js'

function setup (t: { teardown (fn: () => unknown): void }) {
  const bus = new Bus()
  const registry = new GroupRegistry(bus, 10)
  const dropped = new Set<number>()
  const store = new MemoryHistory(async (group, frame, meta) => {
    if (!dropped.has(meta.offset)) await bus.publish(group, frame, meta)
  })
  const lost: string[][] = []
  registry.history = { store, onLost: (groups) => lost.push(groups) }
  const got: Array<number | undefined> = []
  const member: Member = { id: 'm1', groupSet: new Set(), deliver: (_frame, _group, offset) => { got.push(offset) } }
  const cfg = compileHistory({ size: 5, ttl: '1m' }, 'test')
  const publish = (n: number) => store.publish('g', cfg, historyHead('e', { n }, { group: 'g' }))
  t.teardown(async () => { await store.close(); await bus.close() })
  return { registry, dropped, lost, got, member, cfg, publish }
}

test('a hole in the offsets is filled from the history, in order, before later events', async (t) => {
  const { registry, dropped, lost, got, member, cfg, publish } = setup(t)
  await registry.join(member, 'g', cfg)
  await publish(1)
  dropped.add(2)
  dropped.add(3)
  await publish(2)
  await publish(3)
  await publish(4)
  await publish(5)
  await eventually(() => got.length, (n) => n >= 5, { what: 'every event' })
  t.strictSame(got, [1, 2, 3, 4, 5])
  t.strictSame(lost, [], 'nothing reported: the history covered it')
})

test('a hole larger than the history is reported once; the live events keep flowing', async (t) => {
  const { registry, dropped, lost, got, member, cfg, publish } = setup(t)
  await registry.join(member, 'g', cfg)
  await publish(1)
  for (let n = 2; n <= 12; n++) dropped.add(n)
  for (let n = 2; n <= 13; n++) await publish(n)
  await publish(14)
  await eventually(() => lost.length, (n) => n > 0, { what: 'the report' })
  await eventually(() => got.includes(14), { what: 'live events' })
  t.strictSame(lost, [['g']])
  t.strictSame(got, [1, 13, 14], 'the triggering event and later ones still go out')
})

test('after an outage, healAll heals history groups and returns the others', async (t) => {
  const { registry, dropped, got, member, cfg, publish } = setup(t)
  await registry.join(member, 'g', cfg)
  const plain: Member = { id: 'm2', groupSet: new Set(), deliver: () => {} }
  await registry.join(plain, 'plain')
  await publish(1)
  dropped.add(2)
  await publish(2)
  await eventually(() => got.length, (n) => n === 1, { what: 'first' })
  t.strictSame(registry.healAll(['g', 'plain', 'unknown']), ['plain'])
  await eventually(() => got.length, (n) => n === 2, { what: 'healed' })
  t.strictSame(got, [1, 2])
})

test('in memory, events expire ttl after the last one; the epoch and offsets stay', async (t) => {
  const clock = fakeClock(t) // events expire on Date.now(): the test moves it past the ttl
  const store = new MemoryHistory(async () => {})
  t.teardown(() => store.close())
  const cfg = compileHistory({ size: 10, ttl: 100 }, 'test')
  const first = await store.publish('g', cfg, historyHead('e', {}, { group: 'g' }))
  await store.publish('g', cfg, historyHead('e', {}, { group: 'g' }))
  t.match(await store.read('g', cfg, 0, 10), { epoch: first.epoch, top: 2, events: [{ offset: 1 }, { offset: 2 }] })
  clock.tick(150)
  const expired = await store.read('g', cfg, 0, 10)
  t.match(expired, { epoch: first.epoch, top: 2 })
  // (t.match with `events: []` would accept any array)
  t.strictSame(expired.events, [], 'expired events are gone')
  t.match(await store.publish('g', cfg, historyHead('e', {}, { group: 'g' })), { epoch: first.epoch, offset: 3 }, 'offsets go on')
})
