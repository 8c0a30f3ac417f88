// The scale scenarios (issue 16): how cost grows with the number of connections (curve),
// with the size of the app (shape), with the codec (codec) and with the number of
// instances on one Redis (instances). Each is registered in SCALE_DRIVERS with its runner
// and its report; run.ts runs whatever is registered, so new scenarios only add an entry.
import { setTimeout as sleep } from 'node:timers/promises'
import { spawnSync } from 'node:child_process'
import { startPeer, PEER_INFO, type RunningPeer } from './peers.js'
import { awaitServerConnections, withPeer, type DriverContext } from './scenarios.js'
import { startRedisServer, startRedisCluster, hasRedisServer, hasRedisCli } from './redis-server.js'
import { median, type LatencySummary } from './stats.js'
import type { ScaleScenario } from './scale-plan.js'
import type { ConnectSpec, CpuSample, PeerName } from './types.js'

/** The soft open-file limit children inherit (Node cannot raise it itself). */
export function fdLimit (): number {
  const out = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim()
  return out === 'unlimited' ? Infinity : Number(out)
}

const cpuUs = (c: CpuSample): number => c.userUs + c.systemUs
const localAddresses = (n: number): string[] => Array.from({ length: Math.max(1, n) }, (_, i) => `127.0.0.${i + 1}`)

interface Mark { replies: number, errors: number, t: number }

// ---- curve: N idle authenticated connections, grown step by step ----------------------

export interface CurvePoint {
  size: number
  heapPerConn: number
  rssPerConn: number
  /** server CPU while idle, ms per second, with every connection pinged each heartbeatMs */
  heartbeatCpuMsPerSec: number
  /** seconds to open all `size` connections (the sum of the steps) */
  openSeconds: number
  /** one broadcast to all of them: time until the last has it (median) */
  lastMs: number
}
export interface CurveResult {
  heartbeatMs: number
  fdLimit: number
  /** sizes of the plan that did not fit under the open-file limit */
  skipped: number[]
  byPeer: Partial<Record<PeerName, { ok: true, points: CurvePoint[] } | { ok: false, reason: string, points: CurvePoint[] }>>
}

const CURVE_PEERS: PeerName[] = ['fastify', 'wsx']

async function curve (ctx: DriverContext, peers: PeerName[]): Promise<CurveResult> {
  const p = ctx.plan.curve
  const limit = fdLimit()
  // the server and the load generator each hold one end of every socket, plus their own files
  const room = limit - 400
  const sizes = p.sizes.filter((n) => n + 1 <= room)
  const skipped = p.sizes.filter((n) => n + 1 > room)
  const largest = Math.floor((room - 1) / 500) * 500
  if (skipped.length > 0 && largest > (sizes.at(-1) ?? 0)) sizes.push(largest)
  const result: CurveResult = { heartbeatMs: p.heartbeatMs, fdLimit: limit, skipped, byPeer: {} }
  for (const name of CURVE_PEERS.filter((n) => peers.includes(n))) {
    ctx.log(`  ${PEER_INFO[name].label}`)
    const points: CurvePoint[] = []
    try {
      await withPeer(name, { users: 1, heartbeatMs: p.heartbeatMs }, ctx, async (peer) => {
        const spec: ConnectSpec = { ...peer.spec, localAddresses: localAddresses(p.localAddresses) }
        const pool = `curve-${name}`
        // warm the connection path, so one-time costs are not counted per socket
        await ctx.load.call('open', { pool, spec, count: 20, concurrency: 20 }, 60_000)
        await ctx.load.call('closeAll')
        await awaitServerConnections(peer, 0)
        await sleep(300)
        const base = await peer.mem()
        let open = 0
        let openMs = 0
        for (const size of sizes) {
          const r = await ctx.load.call<{ open: number, ms: number }>('open', { pool, spec, count: size + 1 - open, concurrency: 200 }, 900_000)
          openMs += r.ms
          open = size + 1
          await awaitServerConnections(peer, open, 120_000)
          const m = await peer.mem()
          const c0 = await peer.cpu()
          const t0 = Date.now()
          await sleep(p.idleWindowMs)
          const c1 = await peer.cpu()
          const seconds = (Date.now() - t0) / 1000
          const b = await ctx.load.call<{ receivers: number, times: number[] }>('broadcast', { pool, repeats: p.broadcasts, pauseMs: 200, timeoutMs: 60_000 }, p.broadcasts * 61_000)
          const point = {
            size,
            heapPerConn: (m.heapUsed - base.heapUsed) / open,
            rssPerConn: (m.rss - base.rss) / open,
            heartbeatCpuMsPerSec: (cpuUs(c1) - cpuUs(c0)) / 1000 / seconds,
            openSeconds: openMs / 1000,
            lastMs: median(b.times)
          }
          points.push(point)
          ctx.log(`    ${size}: heap ${(point.heapPerConn / 1024).toFixed(1)} KB/conn, idle CPU ${point.heartbeatCpuMsPerSec.toFixed(1)} ms/s, opened in ${point.openSeconds.toFixed(1)} s, broadcast ${point.lastMs.toFixed(1)} ms`)
        }
      })
      result.byPeer[name] = { ok: true, points }
    } catch (err) {
      result.byPeer[name] = { ok: false, reason: err instanceof Error ? err.message : String(err), points }
      ctx.log(`    FAILED: ${(err as Error).message}`)
    }
  }
  return result
}

// ---- per-message CPU by route size and group count ----------------------------------

export interface ShapeRow { actions: number, groups: number, rtps: number, cpuUsPerRt: number, errors: number }
export interface ShapeResult { rows: ShapeRow[], failures: string[] }

/** Pumps `pool` for warmupMs, then measures one window: round-trips/s and server µs CPU per round-trip. */
async function window (ctx: DriverContext, peer: RunningPeer, pool: string, inflight: number, warmupMs: number, windowMs: number, during?: { start: () => Promise<void>, end: () => Promise<void> }): Promise<{ rate: number, cpu: number, errors: number, done: number }> {
  await ctx.load.call('pumpStart', { pool, inflight })
  try {
    await sleep(warmupMs)
    await during?.start()
    const c0 = await peer.cpu()
    const m0 = await ctx.load.call<Mark>('mark')
    await sleep(windowMs)
    const c1 = await peer.cpu()
    const m1 = await ctx.load.call<Mark>('mark')
    await during?.end()
    const done = m1.replies - m0.replies
    if (done <= 0) throw new Error('no replies in the measurement window')
    return { rate: done / ((m1.t - m0.t) / 1000), cpu: (cpuUs(c1) - cpuUs(c0)) / done, errors: m1.errors - m0.errors, done }
  } finally {
    await ctx.load.call('pumpStop', { pool })
  }
}

async function shape (ctx: DriverContext, peers: PeerName[]): Promise<ShapeResult> {
  if (!peers.includes('wsx')) throw new NotSelected()
  const p = ctx.plan.shape
  const shapes = p.actions.flatMap((actions) => p.groups.map((groups) => ({ actions, groups })))
  const running: Array<{ actions: number, groups: number, peer: RunningPeer, pool: string, samples: Array<{ rate: number, cpu: number, errors: number }> }> = []
  const failures: string[] = []
  try {
    for (const s of shapes) {
      const label = `${s.actions} actions, ${s.groups} groups`
      ctx.log(`  ${label}: start and warm up`)
      const peer = await startPeer('wsx', {
        users: p.connections,
        script: 'bench/servers/wsx-shape.ts',
        label: `wsx-shape (${label})`,
        env: { BENCH_ACTIONS: String(s.actions), BENCH_GROUPS: String(s.groups) }
      })
      const pool = `shape-${s.actions}-${s.groups}`
      running.push({ ...s, peer, pool, samples: [] })
      await ctx.load.call('open', { pool, spec: peer.spec, count: p.connections, concurrency: 50 }, 120_000)
      await awaitServerConnections(peer, p.connections)
      await window(ctx, peer, pool, p.inflight, p.warmupMs, 100)
    }
    for (let rep = 0; rep < ctx.plan.reps; rep++) {
      for (const r of running) {
        try {
          r.samples.push(await window(ctx, r.peer, r.pool, p.inflight, Math.min(500, p.warmupMs), p.windowMs))
        } catch (err) {
          failures.push(`${r.actions} actions, ${r.groups} groups: ${(err as Error).message}`)
        }
      }
      ctx.log(`  rep ${rep + 1}/${ctx.plan.reps} done`)
    }
  } finally {
    await ctx.load.call('closeAll').catch(() => {})
    for (const r of running) await r.peer.stop()
  }
  const rows = running.filter((r) => r.samples.length > 0).map((r) => ({
    actions: r.actions,
    groups: r.groups,
    rtps: median(r.samples.map((s) => s.rate)),
    cpuUsPerRt: median(r.samples.map((s) => s.cpu)),
    errors: r.samples.reduce((n, s) => n + s.errors, 0)
  }))
  if (rows.length === 0) throw new Error(failures[0] ?? 'no shape was measured')
  return { rows, failures }
}

// ---- JSON vs MessagePack on the demo's /ws/bench -----------------------------------

export interface CodecRow { codec: 'JSON' | 'MessagePack', rtps: number, cpuUsPerRt: number, bytesUp: number, bytesDown: number, errors: number }
export interface CodecResult { rows: CodecRow[] }

async function codec (ctx: DriverContext, peers: PeerName[]): Promise<CodecResult> {
  if (!peers.includes('wsx')) throw new NotSelected()
  const p = ctx.plan.codec
  return withPeer('wsx', { users: p.connections }, ctx, async (peer) => {
    const kinds = [
      { codec: 'JSON' as const, pool: 'codec-json', spec: peer.spec },
      { codec: 'MessagePack' as const, pool: 'codec-msgpack', spec: { ...peer.spec, kind: 'wsx-msgpack' as const } }
    ]
    for (const k of kinds) await ctx.load.call('open', { pool: k.pool, spec: k.spec, count: p.connections, concurrency: 50 }, 120_000)
    await awaitServerConnections(peer, p.connections * kinds.length)
    for (const k of kinds) await window(ctx, peer, k.pool, p.inflight, p.warmupMs, 100)
    const samples = new Map<string, Array<{ rate: number, cpu: number, errors: number, up: number, down: number }>>()
    for (let rep = 0; rep < ctx.plan.reps; rep++) {
      for (const k of kinds) {
        let bytes = { sent: 0, received: 0 }
        const w = await window(ctx, peer, k.pool, p.inflight, Math.min(500, p.warmupMs), p.windowMs, {
          start: async () => { await ctx.load.call('wireBytes', { count: true }) },
          end: async () => { bytes = await ctx.load.call('wireBytes', { count: false }) }
        })
        const list = samples.get(k.codec) ?? []
        // bytes were counted over the same window as the replies (give or take the edges)
        list.push({ rate: w.rate, cpu: w.cpu, errors: w.errors, up: bytes.sent / w.done, down: bytes.received / w.done })
        samples.set(k.codec, list)
      }
      ctx.log(`  rep ${rep + 1}/${ctx.plan.reps} done`)
    }
    return {
      rows: kinds.map((k) => {
        const s = samples.get(k.codec) ?? []
        return {
          codec: k.codec,
          rtps: median(s.map((x) => x.rate)),
          cpuUsPerRt: median(s.map((x) => x.cpu)),
          bytesUp: median(s.map((x) => x.up)),
          bytesDown: median(s.map((x) => x.down)),
          errors: s.reduce((n, x) => n + x.errors, 0)
        }
      })
    }
  })
}

// ---- 1, 2, 4 demo instances on one Redis, or on a 3-master Redis Cluster -------------

export type Topology = 'standalone' | 'cluster'

export interface InstancesRow {
  instances: number
  receivers: number
  lastMs: number
  deliveriesPerSec: number
  /** Redis CPU per broadcast, all nodes together (their background work over the same time included) */
  redisCpuUsPerBroadcast: number
  /** the same with nothing published: Redis' background work over an equal time, per broadcast */
  redisIdleCpuUsPerBroadcast: number
  /** one broadcast at a time, sender on the first instance, receiver on the last */
  hop: LatencySummary
}
export interface InstancesResult { topology: Topology, local: LatencySummary, rows: InstancesRow[], failures: string[] }

/** What the instance runs need of a private Redis: how the demo reaches it, and its CPU. */
interface Store {
  peerOptions: { redisUrl: string } | { redisCluster: string }
  cpuSeconds (): Promise<number>
  stop (): Promise<void>
}

async function startStore (topology: Topology): Promise<Store> {
  if (topology === 'standalone') {
    const s = await startRedisServer()
    return { peerOptions: { redisUrl: s.url }, cpuSeconds: s.cpuSeconds, stop: s.stop }
  }
  const c = await startRedisCluster()
  return { peerOptions: { redisCluster: c.nodes }, cpuSeconds: c.cpuSeconds, stop: c.stop }
}

async function instancesOn (topology: Topology, ctx: DriverContext, peers: PeerName[]): Promise<InstancesResult> {
  if (!peers.includes('wsx')) throw new NotSelected()
  if (!hasRedisServer()) throw new Error('redis-server is not installed (apt-get install -y redis-server)')
  if (topology === 'cluster' && !hasRedisCli()) throw new Error('redis-cli is not installed (Debian: redis-tools); it creates the cluster')
  const p = ctx.plan.instances
  const on = topology === 'standalone' ? 'one Redis' : 'a 3-master Redis Cluster'
  const latency = (sender: ConnectSpec, receiver: ConnectSpec): Promise<LatencySummary> =>
    ctx.load.call<LatencySummary>('deliveryLatency', { sender, receiver, count: p.latencyCount, warmup: p.latencyWarmup }, 120_000)
  // the reference: one instance and no Redis at all
  const local = await withPeer('wsx', { users: 2 }, ctx, (peer) => latency(peer.spec, peer.spec))
  const rows: InstancesRow[] = []
  const failures: string[] = []
  const store = await startStore(topology)
  try {
    for (const k of p.counts) {
      ctx.log(`  ${k} instance${k > 1 ? 's' : ''} on ${on}`)
      const started: RunningPeer[] = []
      try {
        for (let i = 0; i < k; i++) started.push(await startPeer('wsx', { users: 2, ...store.peerOptions, label: `wsx instance ${i + 1}/${k} (${topology})` }))
        const first = started[0]!
        const last = started[k - 1]!
        const hop = await latency(first.spec, last.spec)
        // the audience: a sender on the first instance, the receivers spread evenly
        const pool = `instances-${topology}-${k}`
        await ctx.load.call('open', { pool, spec: first.spec, count: 1, concurrency: 1 }, 60_000)
        const each = Math.floor(p.receivers / k)
        for (const inst of started) {
          await ctx.load.call('open', { pool, spec: { ...inst.spec, localAddresses: localAddresses(2) }, count: each, concurrency: 100 }, 300_000)
        }
        for (const inst of started) await awaitServerConnections(inst, each + (inst === first ? 1 : 0), 60_000)
        const cpu0 = await store.cpuSeconds()
        const t0 = Date.now()
        const b = await ctx.load.call<{ receivers: number, times: number[] }>('broadcast', { pool, repeats: p.broadcasts, pauseMs: 100, timeoutMs: 30_000 }, p.broadcasts * 31_000)
        const cpu1 = await store.cpuSeconds()
        const elapsed = Date.now() - t0
        // what Redis spends with nothing published, over as long as the broadcasts took
        // (its timers and, in a cluster, the nodes' gossip), so the table can show both
        const cpu2 = await store.cpuSeconds()
        await sleep(elapsed)
        const cpu3 = await store.cpuSeconds()
        const lastMs = median(b.times)
        rows.push({
          instances: k,
          receivers: b.receivers,
          lastMs,
          deliveriesPerSec: b.receivers / (lastMs / 1000),
          redisCpuUsPerBroadcast: (cpu1 - cpu0) * 1e6 / p.broadcasts,
          redisIdleCpuUsPerBroadcast: (cpu3 - cpu2) * 1e6 / p.broadcasts,
          hop
        })
        ctx.log(`    last after ${lastMs.toFixed(1)} ms, hop p50 ${hop.p50.toFixed(3)} ms`)
      } catch (err) {
        failures.push(`${k} instances: ${(err as Error).message}`)
        ctx.log(`    FAILED: ${(err as Error).message}`)
      } finally {
        await ctx.load.call('closeAll').catch(() => {})
        for (const s of started) await s.stop()
      }
    }
  } finally {
    await store.stop()
  }
  if (rows.length === 0) throw new Error(failures[0] ?? 'no instance count was measured')
  return { topology, local, rows, failures }
}

/** Raised when the peer a scenario needs was left out with --peers; reported, not failed. */
export class NotSelected extends Error {
  constructor () { super('fastify-wsx is not among the selected peers') }
}

/** What each scale scenario yields. */
export interface ScaleResults {
  curve: CurveResult
  shape: ShapeResult
  codec: CodecResult
  instances: InstancesResult
  'instances-cluster': InstancesResult
}

/** The registry: one runner per scale scenario. */
export const SCALE_DRIVERS: { [S in ScaleScenario]: (ctx: DriverContext, peers: PeerName[]) => Promise<ScaleResults[S]> } = {
  curve,
  shape,
  codec,
  instances: (ctx, peers) => instancesOn('standalone', ctx, peers),
  'instances-cluster': (ctx, peers) => instancesOn('cluster', ctx, peers)
}

/** Failures inside a scenario that still produced results (a peer or a step that did not finish). */
export function partialFailures<S extends ScaleScenario> (scenario: S, r: ScaleResults[S]): string[] {
  if (scenario === 'curve') {
    return Object.entries((r as CurveResult).byPeer).flatMap(([peer, o]) => o.ok ? [] : [`${peer}: ${o.reason}`])
  }
  return (r as ShapeResult | InstancesResult).failures ?? []
}
