// The scenario drivers. Each starts a fresh server for its peer, drives the load
// generator phase by phase, samples the server where the issue asks for server-side
// numbers, and always stops what it started.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Child } from './children.js'
import { PEER_INFO, startPeer, type RunningPeer, type StartOptions } from './peers.js'
import { startRedisServer, hasRedisServer } from './redis-server.js'
import { median, type LatencySummary } from './stats.js'
import type { Plan } from './plan.js'
import type { ConnectSpec, Outcome, PeerName } from './types.js'

/** Result of the throughput scenario (medians over the repetitions). */
export interface ThroughputResult { rtps: number, cpuUsPerRt: number, errors: number, samples: number[] }
/** Result of the fixed-rate latency scenario, in ms. */
export interface LatencyResult { p50: number, p99: number, max: number, achievedRate: number, errors: number }
/** Result of the broadcast scenario for one audience size. */
export interface BroadcastPoint { size: number, lastMs: number, deliveriesPerSec: number }
export interface BroadcastResult { points: BroadcastPoint[] }
/** Bytes per idle connection, measured in the server after forced GC. */
export interface MemoryResult { connections: number, heapPerConn: number, rssPerConn: number }
/** Usable connections opened per second (median over the repetitions). */
export interface HandshakeResult { perSec: number, cpuUsPerHandshake: number, errors: number, samples: number[] }
/** Broadcast delivery latency, one instance vs two instances over Redis, in ms. */
export interface RedisResult { local: LatencySummary, cross: LatencySummary, addedP50: number }

/** What every driver gets. */
export interface DriverContext {
  plan: Plan
  /** the load generator (pinned to the other core) */
  load: Child
  log: (line: string) => void
}

interface Mark { replies: number, errors: number, t: number }

/** Outcomes of one scenario, by peer. */
export type PeerOutcomes = Partial<Record<PeerName, Outcome<unknown>>>

/** Raised when a scenario does not apply to a peer; reported as "n/a", not as a failure. */
export class NotApplicable extends Error {}

export async function withPeer<T> (name: PeerName, opts: StartOptions, ctx: DriverContext, body: (peer: RunningPeer) => Promise<T>): Promise<T> {
  const peer = await startPeer(name, opts)
  try {
    return await body(peer)
  } finally {
    // close the clients first, so the server does not spend its last moments on them
    await ctx.load.call('closeAll').catch(() => {})
    await peer.stop()
  }
}

async function openConnections (ctx: DriverContext, pool: string, spec: ConnectSpec, count: number, concurrency = 50): Promise<void> {
  await ctx.load.call('open', { pool, spec, count, concurrency }, 180_000)
}

/** Waits (bounded) until the server counts `n` open sockets, so it has finished setting them up. */
export async function awaitServerConnections (peer: RunningPeer, n: number, ms = 10_000): Promise<void> {
  const until = Date.now() + ms
  let seen = await peer.connections()
  while (seen !== n && seen !== -1 && Date.now() < until) {
    await sleep(50)
    seen = await peer.connections()
  }
  if (seen !== n && seen !== -1) throw new Error(`server sees ${seen} connections, expected ${n}`)
}

/**
 * Runs `prepare` for every peer, then `measure` `reps` times round-robin (A B C A B C ...),
 * so load from outside the bench drifts over all peers alike instead of hitting one.
 */
async function interleaved<R> (
  peers: PeerName[], ctx: DriverContext, opts: StartOptions,
  prepare: (peer: RunningPeer) => Promise<void>,
  measure: (peer: RunningPeer, acc: R[]) => Promise<void>,
  reduce: (acc: R[]) => unknown
): Promise<PeerOutcomes> {
  const out: PeerOutcomes = {}
  const running: RunningPeer[] = []
  const acc = new Map<PeerName, R[]>()
  const fail = (name: PeerName, err: unknown): void => {
    const reason = err instanceof Error ? err.message : String(err)
    out[name] = { ok: false, reason }
    ctx.log(`    ${PEER_INFO[name].label} FAILED: ${reason}`)
  }
  try {
    for (const name of peers) {
      ctx.log(`  ${PEER_INFO[name].label}: start and warm up`)
      try {
        const peer = await startPeer(name, opts)
        running.push(peer)
        await prepare(peer)
        acc.set(name, [])
      } catch (err) {
        fail(name, err)
      }
    }
    for (let rep = 0; rep < ctx.plan.reps; rep++) {
      for (const peer of running) {
        const samples = acc.get(peer.name)
        if (samples === undefined) continue
        try {
          await measure(peer, samples)
          ctx.log(`  rep ${rep + 1}/${ctx.plan.reps} ${PEER_INFO[peer.name].label} done`)
        } catch (err) {
          fail(peer.name, err)
          acc.delete(peer.name)
        }
      }
    }
    for (const [name, samples] of acc) out[name] = { ok: true, value: reduce(samples) }
    return out
  } finally {
    await ctx.load.call('closeAll').catch(() => {})
    for (const peer of running) await peer.stop()
  }
}

interface ThroughputSample { rate: number, cpu: number, errors: number }

/** Request/response throughput, 50 connections × 10 in flight, and server CPU per round-trip. */
export function throughput (peers: PeerName[], ctx: DriverContext): Promise<PeerOutcomes> {
  const p = ctx.plan.throughput
  // pump for a while, then run `window`; stop pumping even if a call in between failed
  const pumpFor = async (peer: RunningPeer, warmupMs: number, window: () => Promise<void>): Promise<void> => {
    await ctx.load.call('pumpStart', { pool: peer.name, inflight: p.inflight })
    try {
      await sleep(warmupMs)
      await window()
    } finally {
      await ctx.load.call('pumpStop', { pool: peer.name })
    }
  }
  return interleaved<ThroughputSample>(peers, ctx,
    // one user per connection, so the demo's per-user throttle (1 000 000/min) is never the limit
    { users: p.connections },
    async (peer) => {
      await openConnections(ctx, peer.name, peer.spec, p.connections)
      await pumpFor(peer, p.warmupMs, async () => {})
    },
    (peer, acc) => pumpFor(peer, Math.min(500, p.warmupMs), async () => {
      const c0 = await peer.cpu()
      const m0 = await ctx.load.call<Mark>('mark')
      await sleep(p.windowMs)
      const c1 = await peer.cpu()
      const m1 = await ctx.load.call<Mark>('mark')
      const done = m1.replies - m0.replies
      if (done <= 0) throw new Error('no replies in the measurement window')
      acc.push({
        rate: done / ((m1.t - m0.t) / 1000),
        cpu: ((c1.userUs + c1.systemUs) - (c0.userUs + c0.systemUs)) / done,
        errors: m1.errors - m0.errors
      })
    }),
    (acc): ThroughputResult => ({
      rtps: median(acc.map((a) => a.rate)),
      cpuUsPerRt: median(acc.map((a) => a.cpu)),
      errors: acc.reduce((n, a) => n + a.errors, 0),
      samples: acc.map((a) => a.rate)
    }))
}

/** Latency at a fixed request rate (open loop), 50 connections. */
export function latency (name: PeerName, ctx: DriverContext): Promise<LatencyResult> {
  const p = ctx.plan.latency
  return withPeer(name, { users: p.connections }, ctx, async (peer) => {
    await openConnections(ctx, name, peer.spec, p.connections)
    const r = await ctx.load.call<LatencySummary & { errors: number, achievedRate: number, lost: number }>(
      'latency', { pool: name, rate: p.rate, warmupMs: p.warmupMs, durationMs: p.durationMs }, p.warmupMs + p.durationMs + 30_000)
    if (r.lost > 0) throw new Error(`${r.lost} requests never answered`)
    return { p50: r.p50, p99: r.p99, max: r.max, achievedRate: r.achievedRate, errors: r.errors }
  })
}

/** Broadcast from one sender to N idle sockets: time until the last has it. */
export function broadcast (name: PeerName, ctx: DriverContext): Promise<BroadcastResult> {
  const p = ctx.plan.broadcast
  return withPeer(name, { users: 1 }, ctx, async (peer) => {
    const points: BroadcastPoint[] = []
    let open = 0
    for (const size of p.sizes) {
      // grow the audience: the sender plus `size` receivers
      await openConnections(ctx, name, peer.spec, size + 1 - open, 100)
      open = size + 1
      await awaitServerConnections(peer, open)
      const r = await ctx.load.call<{ receivers: number, times: number[] }>(
        'broadcast', { pool: name, repeats: p.repeats, pauseMs: 100, timeoutMs: 20_000 }, p.repeats * 21_000)
      const lastMs = median(r.times)
      points.push({ size: r.receivers, lastMs, deliveriesPerSec: r.receivers / (lastMs / 1000) })
      ctx.log(`    ${size} sockets: last after ${lastMs.toFixed(2)} ms`)
    }
    return { points }
  })
}

/** Heap and RSS per idle (authenticated, for wsx) connection, measured in the server. */
export function memory (name: PeerName, ctx: DriverContext): Promise<MemoryResult> {
  const n = ctx.plan.memory.connections
  return withPeer(name, { users: 1 }, ctx, async (peer) => {
    // warm the connection path first, so one-time costs (JIT, caches) are not counted per socket
    await openConnections(ctx, name, peer.spec, 20)
    await ctx.load.call('closeAll')
    await awaitServerConnections(peer, 0)
    await sleep(200)
    const before = await peer.mem()
    await openConnections(ctx, name, peer.spec, n, 100)
    await awaitServerConnections(peer, n)
    await sleep(500)
    const after = await peer.mem()
    return {
      connections: n,
      heapPerConn: (after.heapUsed - before.heapUsed) / n,
      rssPerConn: (after.rss - before.rss) / n
    }
  })
}

interface HandshakeSample { rate: number, cpu: number, errors: number }

/** Connections made usable per second (wsx: one JWT verified at each upgrade). */
export function handshake (peers: PeerName[], ctx: DriverContext): Promise<PeerOutcomes> {
  const p = ctx.plan.handshake
  const run = (peer: RunningPeer, durationMs: number) => ctx.load.call<{ count: number, errors: number, seconds: number, firstError?: string }>(
    'handshakes', { spec: peer.spec, durationMs, concurrency: p.concurrency }, durationMs + 60_000)
  return interleaved<HandshakeSample>(peers, ctx, { users: 1 },
    async (peer) => { await run(peer, p.warmupMs) },
    async (peer, acc) => {
      const c0 = await peer.cpu()
      const r = await run(peer, p.durationMs)
      const c1 = await peer.cpu()
      if (r.count === 0) throw new Error(`no handshake succeeded: ${r.firstError ?? 'unknown error'}`)
      // the CPU includes tearing the socket down again: each handshake is a whole connection's life
      acc.push({ rate: r.count / r.seconds, cpu: ((c1.userUs + c1.systemUs) - (c0.userUs + c0.systemUs)) / r.count, errors: r.errors })
      // let the closed sockets drain so the next measurement does not pay for this one
      await sleep(300)
    },
    (acc): HandshakeResult => ({
      perSec: median(acc.map((a) => a.rate)),
      cpuUsPerHandshake: median(acc.map((a) => a.cpu)),
      errors: acc.reduce((n, a) => n + a.errors, 0),
      samples: acc.map((a) => a.rate)
    }))
}

/** fastify-wsx only: broadcast latency to another instance through Redis, over local delivery. */
export async function redis (name: PeerName, ctx: DriverContext): Promise<RedisResult> {
  if (name !== 'wsx') throw new NotApplicable('cross-instance delivery is a fastify-wsx feature')
  if (!hasRedisServer()) throw new Error('redis-server is not installed (apt-get install -y redis-server)')
  const p = ctx.plan.redis
  const measure = (sender: ConnectSpec, receiver: ConnectSpec) =>
    ctx.load.call<LatencySummary>('deliveryLatency', { sender, receiver, count: p.count, warmup: p.warmup }, 120_000)

  const local = await withPeer(name, { users: 2 }, ctx, (peer) => measure(peer.spec, peer.spec))
  const store = await startRedisServer()
  const started: RunningPeer[] = []
  try {
    const a = await startPeer(name, { users: 2, redisUrl: store.url })
    started.push(a)
    const b = await startPeer(name, { users: 2, redisUrl: store.url })
    started.push(b)
    let cross: LatencySummary
    try {
      cross = await measure(a.spec, b.spec)
    } catch (err) {
      throw new Error(`no delivery from instance A to instance B through Redis (does the demo honour WSX_DEMO_REDIS_URL?): ${(err as Error).message}`)
    }
    return { local, cross, addedP50: cross.p50 - local.p50 }
  } finally {
    for (const s of started) await s.stop()
    await store.stop()
  }
}

/** One side of the history scenario: medians over its rounds. */
export interface HistorySide { lastMs: number, cpuUsPerBroadcast: number }
/** Without and with history on the same audience. */
export interface HistoryComparison { plain: HistorySide, history: HistorySide, lastRatio: number, cpuRatio: number, rounds: number }
/** Broadcast to the same audience without and with history on the group (fastify-wsx only). */
export interface HistoryResult extends HistoryComparison {
  receivers: number
  /** the same through Redis (mqemitter-redis PUBLISH vs the Lua append-and-publish); absent without redis-server */
  redis?: HistoryComparison
}

/**
 * fastify-wsx only: what history costs on a broadcast. The same 1 000-receiver broadcast
 * (the demo's `bench` group) without and with a 100-event history, in alternating rounds
 * so drift on a shared machine hits both sides; each round is a fresh server. Then the
 * same rounds through Redis, when redis-server is installed.
 */
export async function history (name: PeerName, ctx: DriverContext): Promise<HistoryResult> {
  if (name !== 'wsx') throw new NotApplicable('history is a fastify-wsx feature')
  const p = ctx.plan.history
  const side = (benchHistory: number, redisUrl?: string) => withPeer(name, { users: 1, benchHistory, ...(redisUrl !== undefined && { redisUrl }) }, ctx, async (peer) => {
    await openConnections(ctx, name, peer.spec, p.receivers + 1, 100)
    await awaitServerConnections(peer, p.receivers + 1)
    // the clients answer group.joined; let the holds go before measuring
    await sleep(1500)
    const before = await peer.cpu()
    const r = await ctx.load.call<{ receivers: number, times: number[] }>(
      'broadcast', { pool: name, repeats: p.repeats, pauseMs: 50, timeoutMs: 20_000 }, p.repeats * 21_000)
    const after = await peer.cpu()
    const cpuUs = (after.userUs + after.systemUs - before.userUs - before.systemUs) / p.repeats
    return { lastMs: median(r.times), cpuUsPerBroadcast: cpuUs }
  })
  const compare = async (rounds: number, redisUrl?: string): Promise<HistoryComparison> => {
    const plain: HistorySide[] = []
    const withHistory: HistorySide[] = []
    for (let round = 0; round < rounds; round++) {
      plain.push(await side(0, redisUrl))
      withHistory.push(await side(100, redisUrl))
      ctx.log(`    ${redisUrl === undefined ? 'memory' : 'redis'} round ${round + 1}: last after ${plain.at(-1)!.lastMs.toFixed(2)} ms without history, ${withHistory.at(-1)!.lastMs.toFixed(2)} ms with`)
    }
    const mid = (list: HistorySide[]): HistorySide => ({ lastMs: median(list.map((x) => x.lastMs)), cpuUsPerBroadcast: median(list.map((x) => x.cpuUsPerBroadcast)) })
    const a = mid(plain)
    const b = mid(withHistory)
    return { plain: a, history: b, lastRatio: b.lastMs / a.lastMs, cpuRatio: b.cpuUsPerBroadcast / a.cpuUsPerBroadcast, rounds }
  }
  const inMemory = await compare(p.rounds)
  if (!hasRedisServer()) return { receivers: p.receivers, ...inMemory }
  const store = await startRedisServer()
  try {
    return { receivers: p.receivers, ...inMemory, redis: await compare(p.rounds, store.url) }
  } finally {
    await store.stop()
  }
}

/** What each scenario yields per peer. */
export interface ScenarioResults {
  throughput: ThroughputResult
  latency: LatencyResult
  broadcast: BroadcastResult
  memory: MemoryResult
  handshake: HandshakeResult
  redis: RedisResult
  history: HistoryResult
}

/** Scenarios measured one peer at a time (a fresh server each). */
export const PER_PEER_DRIVERS = { latency, broadcast, memory, redis, history } as const
/** Scenarios with repetitions, measured with all peers' servers up, in turns. */
export const INTERLEAVED_DRIVERS = { throughput, handshake } as const
