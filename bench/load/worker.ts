// The load generator: a child process pinned to the core the servers don't use. The
// orchestrator drives it phase by phase over IPC (open, pump, mark, ...) so it can
// sample the server's CPU at the exact edges of each measurement window.
import { performance } from 'node:perf_hooks'
import { serveRpc } from '../lib/rpc.js'
import { summarize, type LatencySummary } from '../lib/stats.js'
import { PAYLOAD, type BenchData, type ConnectSpec } from '../lib/types.js'
import { connect, connectMany, wire, type BenchConn } from './clients.js'

const data: BenchData = { p: PAYLOAD }
/** Open connections by pool name (one pool per peer, so peers can be measured in turns). */
const pools = new Map<string, BenchConn[]>()
let nextId = 1

function pool (name: string): BenchConn[] {
  const conns = pools.get(name)
  if (conns === undefined || conns.length === 0) throw new Error(`no connections open in pool ${name}`)
  return conns
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until `done()` holds, polling every 5 ms, for at most `ms`; returns whether it held. */
async function waitFor (done: () => boolean, ms: number): Promise<boolean> {
  const until = performance.now() + ms
  while (!done()) {
    if (performance.now() > until) return false
    await sleep(5)
  }
  return true
}

/** Adds `count` connections to a pool (offset keeps wsx tokens round-robin across calls). */
async function open (args: { pool: string, spec: ConnectSpec, count: number, concurrency: number }): Promise<{ open: number, ms: number }> {
  const t0 = performance.now()
  const before = pools.get(args.pool) ?? []
  const added = await connectMany(args.spec, args.count, args.concurrency, before.length)
  const conns = before.concat(added)
  pools.set(args.pool, conns)
  return { open: conns.length, ms: performance.now() - t0 }
}

/** Closes one pool, or every pool when none is named. */
function closeAll (args: { pool?: string } | undefined): { closed: number } {
  let closed = 0
  for (const [name, conns] of pools) {
    if (args?.pool !== undefined && args.pool !== name) continue
    for (const c of conns) c.close()
    closed += conns.length
    pools.delete(name)
  }
  return { closed }
}

/** "n closed (codes)" for the connections the server closed, or null when none was. */
function closedSummary (conns: BenchConn[]): string | null {
  const codes = new Map<string, number>()
  for (const c of conns) if (c.closedBy !== undefined) codes.set(c.closedBy, (codes.get(c.closedBy) ?? 0) + 1)
  if (codes.size === 0) return null
  return [...codes].map(([code, n]) => `${n} × ${code}`).join(', ')
}

// ---- closed-loop throughput: each connection keeps `inflight` requests outstanding ----
interface Pump { running: boolean, replies: number, errors: number, outstanding: number }
// each start gets its own state, so a late reply on a previous pool can never restart it
let pump: Pump = { running: false, replies: 0, errors: 0, outstanding: 0 }

function pumpStart (args: { pool: string, inflight: number }): { connections: number } {
  if (pump.running) throw new Error('already pumping')
  const conns = pool(args.pool)
  const state: Pump = { running: true, replies: 0, errors: 0, outstanding: 0 }
  pump = state
  for (const conn of conns) {
    const send = (): void => {
      state.outstanding++
      conn.request(nextId++, 'bench.echo', data)
    }
    conn.onReply = (_id, ok) => {
      state.outstanding--
      if (ok) state.replies++
      else state.errors++
      if (state.running) send()
    }
    for (let i = 0; i < args.inflight; i++) send()
  }
  return { connections: conns.length }
}

/** Counters at this instant; the orchestrator takes one at each edge of a window. */
function mark (): { replies: number, errors: number, t: number } {
  return { replies: pump.replies, errors: pump.errors, t: performance.now() }
}

async function pumpStop (args: { pool: string }): Promise<{ drained: boolean }> {
  const state = pump
  state.running = false
  const drained = await waitFor(() => state.outstanding <= 0, 10_000)
  const closed = closedSummary(pools.get(args.pool) ?? [])
  if (closed !== null) throw new Error(`the server closed connections during the run: ${closed}`)
  return { drained }
}

// ---- open-loop latency at a fixed rate, round-robin over the open connections ----
async function latency (args: { pool: string, rate: number, warmupMs: number, durationMs: number }): Promise<LatencySummary & { errors: number, achievedRate: number, lost: number }> {
  const conns = pool(args.pool)
  const total = Math.round(args.rate * (args.warmupMs + args.durationMs) / 1000)
  const sentAt = new Float64Array(total)
  const tookMs = new Float64Array(total).fill(-1)
  let errors = 0
  let received = 0
  for (const conn of conns) {
    conn.onReply = (id, ok) => {
      received++
      if (!ok || id < 0 || id >= total) { errors++; return }
      tookMs[id] = performance.now() - sentAt[id]!
    }
  }
  const start = performance.now()
  let sent = 0
  // a setImmediate loop (not a 1 ms timer) so sends are spread evenly instead of in bursts;
  // it keeps the load core busy, which is what that core is for
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor((performance.now() - start) * args.rate / 1000))
      while (sent < due) {
        sentAt[sent] = performance.now()
        conns[sent % conns.length]!.request(sent, 'bench.echo', data)
        sent++
      }
      if (sent < total) setImmediate(tick)
      else resolve()
    }
    tick()
  })
  const elapsed = performance.now() - start
  await waitFor(() => received >= total, 10_000)
  const closed = closedSummary(conns)
  if (closed !== null) throw new Error(`the server closed connections during the run: ${closed}`)
  const measured: number[] = []
  const measureFrom = start + args.warmupMs
  for (let i = 0; i < total; i++) {
    if (sentAt[i]! >= measureFrom && tookMs[i]! >= 0) measured.push(tookMs[i]!)
  }
  return { ...summarize(measured), errors, achievedRate: total / (elapsed / 1000), lost: total - received }
}

// ---- broadcast fan-out: conns[0] sends, every other open connection must receive ----
async function broadcast (args: { pool: string, repeats: number, pauseMs: number, timeoutMs: number }): Promise<{ receivers: number, times: number[] }> {
  const [sender, ...receivers] = pool(args.pool)
  if (sender === undefined || receivers.length === 0) throw new Error('broadcast needs a sender and receivers')
  const times: number[] = []
  let replyOk = true
  sender.onReply = (_id, ok) => { if (!ok) replyOk = false }
  sender.onTick = () => {}
  for (let r = 0; r < args.repeats; r++) {
    let got = 0
    let last = 0
    for (const c of receivers) {
      c.onTick = (d) => {
        if (d.bseq !== r) return
        got++
        last = performance.now()
      }
    }
    const t0 = performance.now()
    sender.request(nextId++, 'bench.broadcast', { p: PAYLOAD, bseq: r })
    if (!await waitFor(() => got >= receivers.length, args.timeoutMs)) {
      throw new Error(`broadcast ${r}: ${got}/${receivers.length} received after ${args.timeoutMs} ms`)
    }
    if (!replyOk) throw new Error('broadcast request was refused')
    times.push(last - t0)
    await sleep(args.pauseMs)
  }
  return { receivers: receivers.length, times }
}

// ---- handshakes: connect, wait until usable, drop, repeat, with bounded concurrency ----
async function handshakes (args: { spec: ConnectSpec, durationMs: number, concurrency: number }): Promise<{ count: number, errors: number, seconds: number, firstError?: string }> {
  let count = 0
  let errors = 0
  let firstError: string | undefined
  const start = performance.now()
  const deadline = start + args.durationMs
  const worker = async (w: number): Promise<void> => {
    // bounded: stops at the deadline, or early when the peer keeps refusing
    while (performance.now() < deadline && errors < 20) {
      try {
        const conn = await connect(args.spec, w)
        count++
        conn.close()
      } catch (err) {
        errors++
        firstError ??= err instanceof Error ? err.message : String(err)
      }
    }
  }
  await Promise.all(Array.from({ length: args.concurrency }, (_, w) => worker(w)))
  const seconds = (performance.now() - start) / 1000
  return firstError === undefined ? { count, errors, seconds } : { count, errors, seconds, firstError }
}

// ---- one broadcast at a time from `sender`, latency until `receiver` has it ----
async function deliveryLatency (args: { sender: ConnectSpec, receiver: ConnectSpec, count: number, warmup: number }): Promise<LatencySummary> {
  const sender = await connect(args.sender, 0)
  const receiver = await connect(args.receiver, 1)
  try {
    // the receiver's group subscription may still be on its way to Redis when its first frame
    // arrives: broadcast (negative sequence numbers) until one gets through, then measure
    let primed = false
    for (let k = 1; k <= 50 && !primed; k++) {
      receiver.onTick = (d) => { if (d.bseq === -k) primed = true }
      sender.request(nextId++, 'bench.broadcast', { p: PAYLOAD, bseq: -k })
      await waitFor(() => primed, 200)
    }
    if (!primed) throw new Error('no broadcast reached the receiver within 10 s')
    const samples: number[] = []
    for (let i = 0; i < args.count + args.warmup; i++) {
      let at = -1
      receiver.onTick = (d) => { if (d.bseq === i) at = performance.now() }
      const t0 = performance.now()
      sender.request(nextId++, 'bench.broadcast', { p: PAYLOAD, bseq: i })
      if (!await waitFor(() => at >= 0, 5000)) throw new Error(`broadcast ${i} never reached the receiver`)
      if (i >= args.warmup) samples.push(at - t0)
    }
    return summarize(samples)
  } finally {
    sender.close()
    receiver.close()
  }
}

/** Starts (and zeroes) or stops counting payload bytes; returns the counts so far. */
function wireBytes (args: { count: boolean }): { sent: number, received: number } {
  const counts = { sent: wire.sent, received: wire.received }
  wire.counting = args.count
  wire.sent = 0
  wire.received = 0
  return counts
}

serveRpc({
  wireBytes: (a) => wireBytes(a as Parameters<typeof wireBytes>[0]),
  open: (a) => open(a as Parameters<typeof open>[0]),
  closeAll: (a) => closeAll(a as Parameters<typeof closeAll>[0]),
  pumpStart: (a) => pumpStart(a as Parameters<typeof pumpStart>[0]),
  mark: () => mark(),
  pumpStop: (a) => pumpStop(a as Parameters<typeof pumpStop>[0]),
  latency: (a) => latency(a as Parameters<typeof latency>[0]),
  broadcast: (a) => broadcast(a as Parameters<typeof broadcast>[0]),
  handshakes: (a) => handshakes(a as Parameters<typeof handshakes>[0]),
  deliveryLatency: (a) => deliveryLatency(a as Parameters<typeof deliveryLatency>[0])
}, { pid: process.pid })
