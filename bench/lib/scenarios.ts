// The scenario drivers. Each starts a fresh server for its peer, drives the load
// generator phase by phase, samples the server where the issue asks for server-side
// numbers, and always stops what it started.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Child } from './children.js'
import { startPeer, type RunningPeer, type StartOptions } from './peers.js'
import { startRedisServer, hasRedisServer } from './redis-server.js'
import { median, type LatencySummary } from './stats.js'
import type { Plan } from './plan.js'
import type { ConnectSpec, PeerName } from './types.js'

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

/** Raised when a scenario does not apply to a peer; reported as "n/a", not as a failure. */
export class NotApplicable extends Error {}

async function withPeer<T> (name: PeerName, opts: StartOptions, ctx: DriverContext, body: (peer: RunningPeer) => Promise<T>): Promise<T> {
  const peer = await startPeer(name, opts)
  try {
    return await body(peer)
  } finally {
    // close the clients first, so the server does not spend its last moments on them
    await ctx.load.call('closeAll').catch(() => {})
    await peer.stop()
  }
}

async function openConnections (ctx: DriverContext, spec: ConnectSpec, count: number, concurrency = 50): Promise<void> {
  await ctx.load.call('open', { spec, count, concurrency }, 180_000)
}

/** Waits (bounded) until the server counts `n` open sockets, so it has finished setting them up. */
async function awaitServerConnections (peer: RunningPeer, n: number, ms = 10_000): Promise<void> {
  const until = Date.now() + ms
  let seen = await peer.connections()
  while (seen !== n && seen !== -1 && Date.now() < until) {
    await sleep(50)
    seen = await peer.connections()
  }
  if (seen !== n && seen !== -1) throw new Error(`server sees ${seen} connections, expected ${n}`)
}

/** Request/response throughput, 50 connections × 10 in flight, and server CPU per round-trip. */
export function throughput (name: PeerName, ctx: DriverContext): Promise<ThroughputResult> {
  const p = ctx.plan.throughput
  // one user per connection, so the demo's per-user throttle (1 000 000/min) is never the limit
  return withPeer(name, { users: p.connections }, ctx, async (peer) => {
    await openConnections(ctx, peer.spec, p.connections)
    await ctx.load.call('pumpStart', { inflight: p.inflight })
    await sleep(p.warmupMs)
    const rates: number[] = []
    const cpus: number[] = []
    let errors = 0
    for (let rep = 0; rep < ctx.plan.reps; rep++) {
      const c0 = await peer.cpu()
      const m0 = await ctx.load.call<Mark>('mark')
      await sleep(p.windowMs)
      const c1 = await peer.cpu()
      const m1 = await ctx.load.call<Mark>('mark')
      const done = m1.replies - m0.replies
      if (done <= 0) throw new Error('no replies in the measurement window')
      rates.push(done / ((m1.t - m0.t) / 1000))
      cpus.push(((c1.userUs + c1.systemUs) - (c0.userUs + c0.systemUs)) / done)
      errors += m1.errors - m0.errors
    }
    await ctx.load.call('pumpStop')
    return { rtps: median(rates), cpuUsPerRt: median(cpus), errors, samples: rates }
  })
}

/** Latency at a fixed request rate (open loop), 50 connections. */
export function latency (name: PeerName, ctx: DriverContext): Promise<LatencyResult> {
  const p = ctx.plan.latency
  return withPeer(name, { users: p.connections }, ctx, async (peer) => {
    await openConnections(ctx, peer.spec, p.connections)
    const r = await ctx.load.call<LatencySummary & { errors: number, achievedRate: number, lost: number }>(
      'latency', { rate: p.rate, warmupMs: p.warmupMs, durationMs: p.durationMs }, p.warmupMs + p.durationMs + 30_000)
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
      await openConnections(ctx, peer.spec, size + 1 - open, 100)
      open = size + 1
      await awaitServerConnections(peer, open)
      const r = await ctx.load.call<{ receivers: number, times: number[] }>(
        'broadcast', { repeats: p.repeats, pauseMs: 100, timeoutMs: 20_000 }, p.repeats * 21_000)
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
    await openConnections(ctx, peer.spec, 20)
    await ctx.load.call('closeAll')
    await awaitServerConnections(peer, 0)
    await sleep(200)
    const before = await peer.mem()
    await openConnections(ctx, peer.spec, n, 100)
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

/** Connections made usable per second (wsx: one JWT verified at each upgrade). */
export function handshake (name: PeerName, ctx: DriverContext): Promise<HandshakeResult> {
  const p = ctx.plan.handshake
  return withPeer(name, { users: 1 }, ctx, async (peer) => {
    const run = (durationMs: number) => ctx.load.call<{ count: number, errors: number, seconds: number, firstError?: string }>(
      'handshakes', { spec: peer.spec, durationMs, concurrency: p.concurrency }, durationMs + 60_000)
    await run(p.warmupMs)
    const samples: number[] = []
    const cpus: number[] = []
    let errors = 0
    for (let rep = 0; rep < ctx.plan.reps; rep++) {
      const c0 = await peer.cpu()
      const r = await run(p.durationMs)
      const c1 = await peer.cpu()
      if (r.count === 0) throw new Error(`no handshake succeeded: ${r.firstError ?? 'unknown error'}`)
      samples.push(r.count / r.seconds)
      // includes tearing the socket down again: each handshake here is a whole connection's life
      cpus.push(((c1.userUs + c1.systemUs) - (c0.userUs + c0.systemUs)) / r.count)
      errors += r.errors
      // let the closed sockets drain so one repetition does not pay for the previous one
      await sleep(300)
    }
    return { perSec: median(samples), cpuUsPerHandshake: median(cpus), errors, samples }
  })
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

/** Drivers by scenario name. */
export const DRIVERS = { throughput, latency, broadcast, memory, handshake, redis } as const
