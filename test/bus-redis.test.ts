// The Bus over mqemitter-redis against a real, private redis-server: cross-instance and
// cross-process delivery, garbage on our channels, outages (stop/restart, CLIENT KILL,
// freeze) and a close that cannot hang.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { Bus, type BusMeta, type BusOptions } from '../lib/broadcast/bus.js'
import { BusUnavailableError } from '../lib/errors.js'
import { createRedisEmitter } from '../lib/broadcast/redis-emitter.js'
import { startRedis, type RedisHandle } from './helpers/redis.js'
import { stopChild, tsNodeArgs } from './helpers/ts-child.js'
import { eventually } from './helpers/eventually.js'
import { closeRedis, createRedis, waitForRedis } from '../lib/redis/create.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/bus-process.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('..', import.meta.url))

function recordingLog () {
  const warnings: string[] = []
  const log = { debug () {}, warn (_o: object, m?: string) { warnings.push(String(m)) }, error (_o: object, m?: string) { warnings.push(String(m)) } }
  return { log, warnings }
}

async function redisBus (t: Test, redis: RedisHandle, opts: BusOptions = {}): Promise<Bus> {
  const bus = new Bus({ emitter: createRedisEmitter(redis.url), ...opts })
  t.teardown(() => bus.close())
  await eventually(() => bus.up, { what: 'bus up' })
  return bus
}

function inbox () {
  const frames: string[] = []
  const metas: BusMeta[] = []
  const listener = (frame: string, meta: BusMeta) => { frames.push(frame); metas.push(meta) }
  return { frames, metas, listener }
}

/** Just enough msgpack to forge packets: nil, small ints, short strings, arrays, maps. */
function msgpack (v: unknown): Buffer {
  if (v === null) return Buffer.from([0xc0])
  if (typeof v === 'number') return Buffer.from([v & 0x7f])
  if (typeof v === 'string') {
    const b = Buffer.from(v)
    return Buffer.concat([b.length < 32 ? Buffer.from([0xa0 | b.length]) : Buffer.from([0xd9, b.length]), b])
  }
  if (Array.isArray(v)) return Buffer.concat([Buffer.from([0x90 | v.length]), ...v.map(msgpack)])
  const entries = Object.entries(v as object)
  return Buffer.concat([Buffer.from([0x80 | entries.length]), ...entries.flatMap(([k, x]) => [msgpack(k), msgpack(x)])])
}

t.test('two instances, each with its own Redis emitter', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const a = await redisBus(t, redis)
  const b = await redisBus(t, redis)
  const inA = inbox()
  const inB = inbox()
  await a.subscribe('room', inA.listener)
  await b.subscribe('room', inB.listener)
  await a.publish('room', '{"n":1}', { exclude: 'conn-a1' })
  await b.publish('room', '{"n":2}')
  await eventually(() => ({ a: inA.frames, b: inB.frames }), ({ a, b }) => a.length === 2 && b.length === 2, { what: 'both frames on both instances' })
  t.same(inA.frames.sort(), ['{"n":1}', '{"n":2}'])
  t.same(inB.frames.sort(), ['{"n":1}', '{"n":2}'])
  t.same(inB.metas.find(m => m.exclude), { group: 'room', exclude: 'conn-a1' }, 'exclude crosses instances')

  const frame = '{"action":"x","data":{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"y":1}}}}'
  await a.publish('room', frame)
  await eventually(() => inB.frames, (frames) => frames.length === 3, { what: 'proto frame' })
  t.equal(inB.frames[2], frame, '__proto__ crosses msgpack as plain text')

  await b.unsubscribe('room', inB.listener)
  await a.publish('room', 'after-leave')
  await eventually(() => inA.frames, (frames) => frames.includes('after-leave'), { what: 'a gets it' })
  await sleep(50) // real time: what must not arrive would come over Redis, on no clock of ours
  t.notOk(inB.frames.includes('after-leave'), 'nothing after the last unsubscribe')
})

t.test('a subscription made while the subscriber connection is still in its handshake is not lost', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  // the plugin's own ioredis 5: it would write this SUBSCRIBE before its ready check, then
  // refuse its own INFO in subscriber mode, reconnect, and forget the subscription
  for (let round = 1; round <= 3; round++) {
    const emitter = createRedisEmitter(redis.url, `hs${round}`)
    const subConn = (emitter as unknown as { subConn: { status: string, once (e: string, l: () => void): void, on (e: string, l: () => void): void } }).subConn
    const bus = new Bus({ emitter, namespace: `hs${round}` })
    t.teardown(() => bus.close())
    let reconnects = 0
    subConn.on('reconnecting', () => { reconnects++ })
    const room = inbox()
    const during = await new Promise<string>((resolve) => {
      subConn.once('connect', () => {
        const status = subConn.status
        bus.subscribe('room', room.listener).then(() => resolve(status), () => resolve('failed'))
      })
    })
    t.equal(during, 'connect', `round ${round}: subscribed during the handshake`)
    await eventually(() => bus.up, { what: 'bus up' })
    const [, count] = await redis.client().pubsub('NUMSUB', bus.topicOf('room')) as [string, number]
    t.equal(count, 1, `round ${round}: Redis holds the subscription`)
    await bus.publish('room', `hello ${round}`)
    await eventually(() => room.frames.length > 0, { what: 'the frame', timeout: 3000 }).catch(() => {})
    t.same(room.frames, [`hello ${round}`], `round ${round}: the frame arrives`)
    t.equal(reconnects, 0, `round ${round}: the connection never had to reconnect`)
  }
})

t.test('garbage PUBLISHed on our channels is dropped, and the process survives', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const { log, warnings } = recordingLog()
  const bus = await redisBus(t, redis, { log })
  const room = inbox()
  const kicks: unknown[] = []
  await bus.subscribe('room', room.listener)
  await bus.onControl('kick', (p) => { kicks.push(p) })
  const raw = redis.client()
  const forged = (msg: unknown, id = randomBytes(8).toString('hex')) => msgpack({ id, msg })
  const garbage: Array<string | Buffer> = [
    'junk',
    '',
    randomBytes(64),
    msgpack(null),
    msgpack(42),
    msgpack('just a string'),
    msgpack([1, 2, 3]),
    Buffer.concat([Buffer.alloc(20_000, 0x91), Buffer.from([0xc0])]), // nested arrays: recursion bomb
    forged(null),
    forged(42),
    forged({ no: 'topic' }),
    forged({ topic: 'wsx/g/room' }),
    forged({ topic: 'wsx/g/room', v: 1, frame: 42 }),
    forged({ topic: 'wsx/g/room', v: 1, frame: ['x'] }),
    forged({ topic: 'wsx/g/room', v: 1, frame: 'x', exclude: 5 }),
    forged(JSON.parse('{"topic":"wsx/g/room","__proto__":{"v":1,"frame":"from a prototype"}}')),
    forged({ topic: 'wsx/g/room', v: 9, frame: 'unknown version' })
  ]
  for (const junk of garbage) {
    await raw.publish('wsx/g/room', junk)
    await raw.publish('wsx/c/kick', junk)
  }
  await raw.publish('wsx/c/kick', forged({ topic: 'wsx/c/kick', v: 1, frame: '{"__proto__":{"x":1}}' }))
  await raw.publish('wsx/c/kick', forged({ topic: 'wsx/c/kick', v: 1, frame: '[1]' }))
  await bus.publish('room', 'valid')
  await bus.publishControl('kick', { user: 'mallory' })
  await eventually(() => room.frames.length > 0 && kicks.length > 0, { what: 'the valid frame' })
  await sleep(50) // real time: what must not arrive would come over Redis, on no clock of ours
  t.same(room.frames, ['valid'], 'only the valid frame was delivered')
  t.same(kicks, [{ user: 'mallory' }], 'only the valid command was delivered')
  t.ok(warnings.includes('wsx bus: dropped a message that was not ours'), 'the drop was logged')
  t.equal(warnings.filter(w => w.startsWith('wsx bus: dropped')).length, 1, 'a flood is logged once per interval')
  t.ok(bus.up)
})

t.test('a second process: delivery both ways, and it survives garbage too', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const child = spawn(process.execPath, tsNodeArgs(FIXTURE, 'echo', redis.url), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => stopChild(child))
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d })
  child.stderr.on('data', (d: Buffer) => { stderr += d })
  await eventually(() => ({ stdout, stderr }), (out) => out.stdout.includes('ready') || child.exitCode !== null, { what: 'child ready', timeout: 20_000 })
  t.equal(child.exitCode, null, `child is running ${stderr}`)

  const bus = await redisBus(t, redis)
  const back = inbox()
  await bus.subscribe('from-child', back.listener)
  await redis.client().publish('wsx/g/to-child', 'junk')
  await redis.client().publish('wsx/g/to-child', msgpack({ id: 'x', msg: { topic: 'wsx/g/to-child', v: 1, frame: 1 } }))
  await bus.publish('to-child', 'hello')
  await eventually(() => back.frames, (frames) => frames.length > 0, { what: 'echo' })
  t.same(back.frames, ['echo:hello'])
  t.equal(child.exitCode, null, 'the child survived the garbage')
})

t.test('Redis stopped then restarted: publish fails fast, onResync fires once, delivery resumes', async (t) => {
  const redis = await startRedis(t)
  if (!redis?.owned) return
  const { log, warnings } = recordingLog()
  const bus = await redisBus(t, redis, { log, ackTimeoutMs: 300, publishTimeoutMs: 500 })
  const room = inbox()
  const lobby = inbox()
  const late = inbox()
  const resyncs: string[][] = []
  bus.onResync((groups) => resyncs.push([...groups].sort()))
  await bus.subscribe('room', room.listener)
  await bus.subscribe('lobby', lobby.listener)

  await redis.stop()
  await eventually(() => !bus.up, { what: 'bus down' })
  const started = Date.now()
  await t.rejects(bus.publish('room', 'lost'), BusUnavailableError)
  t.ok(Date.now() - started < 100, 'rejected at once, not queued')
  await bus.subscribe('late', late.listener) // joins during the outage: bounded by ackTimeoutMs
  t.same(resyncs, [], 'no resync while down')

  await redis.restart()
  await eventually(() => resyncs.length, (n) => n > 0, { what: 'resync', timeout: 10_000 })
  t.same(resyncs, [['late', 'lobby', 'room']], 'the groups subscribed at that time')
  t.ok(bus.up)
  await bus.publish('room', 'back')
  await bus.publish('late', 'joined during the outage')
  await eventually(() => room.frames.length > 0 && late.frames.length > 0, { what: 'delivery after restart' })
  t.same(room.frames, ['back'])
  t.same(late.frames, ['joined during the outage'])
  await sleep(50) // real time: a second resync would come from ioredis's reconnect timers
  t.equal(resyncs.length, 1, 'once')
  t.notOk(warnings.includes('wsx bus: subscriber link ready but PING unanswered'), 'the readiness PING works in subscriber mode')
})

t.test('CLIENT KILL TYPE pubsub: the dropped subscription is resynced', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  const bus = await redisBus(t, redis)
  const other = await redisBus(t, redis)
  const room = inbox()
  const resyncs: string[][] = []
  bus.onResync((groups) => resyncs.push(groups))
  await bus.subscribe('room', room.listener)
  const killed = await redis.client().call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  t.ok(Number(killed) >= 1, `killed ${String(killed)} subscriber(s)`)
  await eventually(() => resyncs.length, (n) => n > 0, { what: 'resync' })
  t.same(resyncs, [['room']])
  await other.publish('room', 'again')
  await eventually(() => room.frames.length, (n) => n > 0, { what: 'delivery' })
  t.same(room.frames, ['again'])
})

t.test('frozen Redis: publish rejects on its timeout instead of hanging', async (t) => {
  const redis = await startRedis(t)
  if (!redis?.owned) return
  const bus = await redisBus(t, redis, { publishTimeoutMs: 300 })
  const room = inbox()
  await bus.subscribe('room', room.listener)
  redis.freeze()
  t.teardown(() => redis.thaw())
  const started = Date.now()
  await t.rejects(bus.publish('room', 'frozen'), BusUnavailableError)
  const took = Date.now() - started
  t.ok(took >= 250 && took < 1500, `rejected after ${took} ms`)
  redis.thaw()
  await bus.publish('room', 'thawed')
  await eventually(() => room.frames.includes('thawed'), { what: 'delivery after thaw' })

  redis.freeze()
  const closing = Date.now()
  await bus.close()
  const closeTook = Date.now() - closing
  t.ok(closeTook < 1000 + 600, `close() with a frozen Redis took ${closeTook} ms`)
  redis.thaw()
})

t.test('frozen Redis: the link probe marks the bus down, and the thaw ends in one resync', async (t) => {
  const redis = await startRedis(t)
  if (!redis?.owned) return
  const bus = await redisBus(t, redis, { probeIntervalMs: 100, ackTimeoutMs: 300, publishTimeoutMs: 300 })
  const room = inbox()
  const resyncs: string[][] = []
  bus.onResync((groups) => resyncs.push(groups))
  await bus.subscribe('room', room.listener)
  redis.freeze()
  t.teardown(() => redis.thaw())
  await eventually(() => !bus.up, { what: 'bus down while frozen' })
  t.same(resyncs, [], 'no resync while frozen')
  redis.thaw()
  await eventually(() => resyncs.length, (n) => n > 0, { what: 'resync after thaw' })
  t.same(resyncs, [['room']])
  t.ok(bus.up, 'up again')
  await bus.publish('room', 'after')
  await eventually(() => room.frames.includes('after'), { what: 'delivery after thaw' })
})

t.test('close() does not hang when Redis is down, even with a subscription queued', async (t) => {
  const redis = await startRedis(t)
  if (!redis?.owned) return
  const bus = new Bus({ emitter: createRedisEmitter(redis.url), ackTimeoutMs: 100, closeTimeoutMs: 300 })
  await eventually(() => bus.up, { what: 'bus up' })
  await bus.subscribe('room', () => {})
  await redis.stop()
  await eventually(() => !bus.up, { what: 'bus down' })
  await bus.subscribe('queued', () => {}) // sits in the subscriber's offline queue
  const started = Date.now()
  await bus.close()
  const took = Date.now() - started
  t.ok(took < 800, `closed in ${took} ms`)
  await sleep(100) // room for an unhandled rejection from quit() to surface (it would fail the run)
  t.notOk(bus.up)
})

t.test('the emitter state has an error listener: a bus that never reached Redis does not crash', async (t) => {
  // nothing listens on this port: ECONNREFUSED on every retry
  const emitter = createRedisEmitter({ host: '127.0.0.1', port: 1 })
  const bus = new Bus({ emitter, ackTimeoutMs: 100, closeTimeoutMs: 200 })
  await sleep(200) // real time: the refused connections are real, retried on ioredis's timers
  t.notOk(bus.up)
  await t.rejects(bus.publish('room', 'x'), BusUnavailableError)
  await bus.close()
})

t.test('createRedis/closeRedis: a store client never hangs, errors never throw', async (t) => {
  const redis = await startRedis(t)
  if (!redis?.owned) return
  const errors: Error[] = []
  const store = createRedis(redis.url, { purpose: 'store', onError: (err) => { errors.push(err); throw new Error('a bad reporter') } })
  const original = redis.client()
  const dup = createRedis(original, { purpose: 'store', connectionName: 'wsx:test' })
  const fromOptions = createRedis({ host: redis.host, port: redis.port, commandTimeout: 200 }, { purpose: 'store' })
  t.ok(await waitForRedis(store))
  t.ok(await waitForRedis(dup))
  t.ok(await waitForRedis(fromOptions))
  t.not(dup, original, 'an existing client is duplicated, not taken over')
  t.equal(dup.options.commandTimeout, 1000)
  t.equal(fromOptions.options.commandTimeout, 1000, 'the fail-fast options win over the app\'s (named in a boot warning)')
  t.match(await original.client('LIST'), /name=wsx:test/)

  redis.freeze()
  t.teardown(() => redis.thaw())
  const started = Date.now()
  await t.rejects(dup.get('k'), /timed out/i, 'a frozen Redis makes the command time out')
  t.ok(Date.now() - started < 1500)
  const closing = Date.now()
  await closeRedis(dup, 200)
  t.ok(Date.now() - closing < 600, 'closeRedis is bounded')
  t.equal(dup.status, 'end')
  redis.thaw()

  await redis.stop()
  const failing = Date.now()
  await t.rejects(store.get('k'), 'with Redis down a command fails at once (no offline queue)')
  t.ok(Date.now() - failing < 100)
  await eventually(() => errors.length, (n) => n > 0, { what: 'an error report' })
  await closeRedis(store, 200)
  await closeRedis(fromOptions, 200)
  await closeRedis(fromOptions, 200) // twice is fine
  t.equal(original.status === 'end', false, 'the original client was left alone')
  t.notOk(await waitForRedis(dup, 50), 'an ended client is never ready')
})
