// Renders the results as markdown: one table per scenario with ratios against raw
// @fastify/websocket (and socket.io for throughput), then the targets with
// PASS/MISS for fastify-wsx.
import type { Scenario } from './plan.js'
import type { ScaleScenario } from './scale-plan.js'
import { PEER_INFO } from './peers.js'
import type { ScenarioResults } from './scenarios.js'
import type { Outcome, PeerName } from './types.js'

/** The scenarios measured peer by peer (the scale scenarios report themselves: report-scale.ts). */
export type PeerScenario = Exclude<Scenario, ScaleScenario>
export type ResultOf<S extends PeerScenario> = ScenarioResults[S]

/** Every outcome of a run, by scenario then peer. */
export type Results = { [S in PeerScenario]?: Partial<Record<PeerName, Outcome<ResultOf<S>>>> }

const BASE: PeerName = 'fastify'

function table (headers: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n')
}

const int = (n: number): string => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—'
const fixed = (n: number, digits: number): string => Number.isFinite(n) ? n.toFixed(digits) : '—'
const ratio = (a: number, b: number | undefined): string => b === undefined || !Number.isFinite(a / b) ? '—' : `${(a / b).toFixed(2)}×`
const kb = (bytes: number): string => fixed(bytes / 1024, 1)
const verdict = (pass: boolean): string => pass ? 'PASS' : 'MISS'

function value<S extends PeerScenario> (results: Results, s: S, peer: PeerName): ResultOf<S> | undefined {
  const o = results[s]?.[peer]
  return o?.ok === true ? o.value as ResultOf<S> : undefined
}

/** A target of issue 6, checked on fastify-wsx against its reference peer. */
interface Target {
  scenario: PeerScenario
  /** a word or two for the scenario table's target column */
  short: string
  text: string
  /** measured ratio/value and whether it passes; undefined when a side is missing */
  check (r: Results): { measured: string, pass: boolean } | undefined
}

function ratioTarget (scenario: PeerScenario, short: string, text: string, pick: (r: Results, peer: PeerName) => number | undefined, vs: PeerName, limit: number, atLeast: boolean): Target {
  return {
    scenario,
    short,
    text,
    check (r) {
      const mine = pick(r, 'wsx')
      const ref = pick(r, vs)
      if (mine === undefined || ref === undefined) return undefined
      const x = mine / ref
      return { measured: `${x.toFixed(2)}×`, pass: atLeast ? x >= limit : x <= limit }
    }
  }
}

const rtps = (r: Results, p: PeerName): number | undefined => value(r, 'throughput', p)?.rtps
const cpu = (r: Results, p: PeerName): number | undefined => value(r, 'throughput', p)?.cpuUsPerRt
const p99 = (r: Results, p: PeerName): number | undefined => value(r, 'latency', p)?.p99
const lastAtLargest = (r: Results, p: PeerName): number | undefined => value(r, 'broadcast', p)?.points.at(-1)?.lastMs
const heap = (r: Results, p: PeerName): number | undefined => value(r, 'memory', p)?.heapPerConn
const hs = (r: Results, p: PeerName): number | undefined => value(r, 'handshake', p)?.perSec
const hsCpu = (r: Results, p: PeerName): number | undefined => value(r, 'handshake', p)?.cpuUsPerHandshake

/** The targets, in its order. */
export const TARGETS: Target[] = [
  ratioTarget('throughput', 'rt/s', 'round-trips/s ≥ 0.85 × raw @fastify/websocket', rtps, BASE, 0.85, true),
  ratioTarget('throughput', 'CPU', 'server CPU per round-trip ≤ 1.18 × raw @fastify/websocket', cpu, BASE, 1.18, false),
  ratioTarget('throughput', 'vs socket.io', 'round-trips/s ≥ 1.3 × socket.io', rtps, 'socketio', 1.3, true),
  ratioTarget('latency', 'p99', 'p99 at a fixed 10 000/s ≤ 1.3 × raw @fastify/websocket', p99, BASE, 1.3, false),
  ratioTarget('broadcast', 'time', 'broadcast to 5 000: time until the last has it ≤ 1.1 × raw @fastify/websocket', lastAtLargest, BASE, 1.1, false),
  ratioTarget('memory', 'heap', 'heap per idle authenticated connection ≤ raw @fastify/websocket', heap, BASE, 1, false),
  ratioTarget('handshake', 'rate', 'handshakes/s with JWT at the upgrade ≥ 0.8 × raw @fastify/websocket without auth', hs, BASE, 0.8, true),
  // issue 16: the tighter hot-path target, and the handshake against the honest floor
  ratioTarget('throughput', 'CPU (16)', 'server CPU per round-trip ≤ 1.15 × raw @fastify/websocket (issue 16)', cpu, BASE, 1.15, false),
  ratioTarget('handshake', 'CPU vs +jwt', 'server CPU per handshake ≤ 1.2 × raw @fastify/websocket + @fastify/jwt in onRequest (issue 16)', hsCpu, 'fastifyJwt', 1.2, false),
  {
    scenario: 'history',
    short: 'CPU',
    // the server's CPU per broadcast, the steadier of the two on a shared machine; the time ratio is shown next to it
    text: 'broadcast to 1 000 with history on the group: server CPU per broadcast ≤ 1.2 × the same broadcast without history',
    check (r) {
      const v = value(r, 'history', 'wsx')
      return v === undefined ? undefined : { measured: `${v.cpuRatio.toFixed(2)}× (time ${v.lastRatio.toFixed(2)}×)`, pass: v.cpuRatio <= 1.2 }
    }
  },
  {
    scenario: 'redis',
    short: 'added p50',
    text: 'cross-instance broadcast through Redis adds ≤ 1 ms at p50 over local',
    check (r) {
      const v = value(r, 'redis', 'wsx')
      return v === undefined ? undefined : { measured: `+${v.addedP50.toFixed(3)} ms`, pass: v.addedP50 <= 1 }
    }
  }
]

/** PASS/MISS cells of the wsx row for one scenario's targets. */
function targetCell (r: Results, scenario: PeerScenario, peer: PeerName): string {
  if (peer !== 'wsx') return ''
  return TARGETS.filter((t) => t.scenario === scenario)
    .map((t) => {
      const c = t.check(r)
      return `${t.short} ${c === undefined ? 'n/a' : verdict(c.pass)}`
    })
    .join(', ')
}

type RowBuilder<S extends PeerScenario> = (v: ResultOf<S>, peer: PeerName, r: Results) => string[][]

function scenarioTable<S extends PeerScenario> (r: Results, s: S, title: string, headers: string[], build: RowBuilder<S>): string {
  const byPeer = r[s]
  if (byPeer === undefined) return ''
  const rows: string[][] = []
  for (const [peer, outcome] of Object.entries(byPeer) as Array<[PeerName, Outcome<ResultOf<S>>]>) {
    if (outcome.ok) {
      for (const row of build(outcome.value, peer, r)) rows.push([PEER_INFO[peer].label, ...row])
    } else {
      rows.push([PEER_INFO[peer].label, `not measured: ${outcome.reason.replace(/\|/g, '/')}`, ...headers.slice(2).map(() => '')])
    }
  }
  return `### ${title}\n\n${table(headers, rows)}\n`
}

/** The report's tables for the scenarios that ran. */
export function renderTables (r: Results, plan: { quick: boolean, throughputLabel: string, latencyLabel: string, memoryLabel: string }): string {
  const parts = [
    scenarioTable(r, 'throughput', `Request/response throughput (${plan.throughputLabel})`,
      ['peer', 'round-trips/s', 'server µs CPU / round-trip', 'rt/s vs fastify', 'CPU vs fastify', 'rt/s vs socket.io', 'errors', 'targets'],
      (v, peer, all) => [[int(v.rtps), fixed(v.cpuUsPerRt, 1), ratio(v.rtps, rtps(all, BASE)), ratio(v.cpuUsPerRt, cpu(all, BASE)),
        ratio(v.rtps, rtps(all, 'socketio')), String(v.errors), targetCell(all, 'throughput', peer)]]),
    scenarioTable(r, 'latency', `Latency at a fixed rate (${plan.latencyLabel})`,
      ['peer', 'p50 ms', 'p99 ms', 'max ms', 'achieved req/s', 'p99 vs fastify', 'errors', 'target'],
      (v, peer, all) => [[fixed(v.p50, 3), fixed(v.p99, 3), fixed(v.max, 2), int(v.achievedRate), ratio(v.p99, p99(all, BASE)),
        String(v.errors), targetCell(all, 'latency', peer)]]),
    scenarioTable(r, 'broadcast', 'Broadcast fan-out to idle sockets (median of the repetitions)',
      ['peer', 'sockets', 'last one has it after (ms)', 'deliveries/s', 'time vs fastify', 'target'],
      (v, peer, all) => v.points.map((pt, i) => {
        const ref = value(all, 'broadcast', BASE)?.points[i]?.lastMs
        const last = i === v.points.length - 1
        return [int(pt.size), fixed(pt.lastMs, 2), int(pt.deliveriesPerSec), ratio(pt.lastMs, ref), last ? targetCell(all, 'broadcast', peer) : '']
      })),
    scenarioTable(r, 'memory', `Memory per idle connection (${plan.memoryLabel}, server side, after forced GC)`,
      ['peer', 'connections', 'heap KB / conn', 'RSS KB / conn', 'heap vs fastify', 'target'],
      (v, peer, all) => [[int(v.connections), kb(v.heapPerConn), kb(v.rssPerConn), ratio(v.heapPerConn, heap(all, BASE)), targetCell(all, 'memory', peer)]]),
    scenarioTable(r, 'handshake', 'Handshakes/s (fastify-wsx and raw + @fastify/jwt: JWT verified at the upgrade; other raw peers: no auth)',
      ['peer', 'handshakes/s', 'server µs CPU / connection', 'vs fastify', 'CPU vs raw + jwt', 'errors', 'target'],
      (v, peer, all) => [[int(v.perSec), fixed(v.cpuUsPerHandshake, 0), ratio(v.perSec, hs(all, BASE)), ratio(v.cpuUsPerHandshake, hsCpu(all, 'fastifyJwt')), String(v.errors), targetCell(all, 'handshake', peer)]]),
    scenarioTable(r, 'redis', 'Cross-instance broadcast through Redis (fastify-wsx only; one broadcast at a time)',
      ['peer', 'local p50 ms', 'via Redis p50 ms', 'added p50 ms', 'local p99 ms', 'via Redis p99 ms', 'target'],
      (v, peer, all) => [[fixed(v.local.p50, 3), fixed(v.cross.p50, 3), fixed(v.addedP50, 3), fixed(v.local.p99, 3), fixed(v.cross.p99, 3), targetCell(all, 'redis', peer)]]),
    scenarioTable(r, 'history', 'Broadcast with history (fastify-wsx only; the `bench` group with and without a 100-event history, in memory, then through Redis)',
      ['peer', 'receivers', 'rounds', 'last has it, no history (ms)', 'with history (ms)', 'time ratio', 'server µs CPU / broadcast, no history', 'with history', 'CPU ratio', 'target'],
      (v, peer, all) => [
        [int(v.receivers), String(v.rounds), fixed(v.plain.lastMs, 2), fixed(v.history.lastMs, 2), `${v.lastRatio.toFixed(2)}×`,
          fixed(v.plain.cpuUsPerBroadcast, 0), fixed(v.history.cpuUsPerBroadcast, 0), `${v.cpuRatio.toFixed(2)}×`, targetCell(all, 'history', peer)],
        ...(v.redis === undefined
          ? []
          : [[`${int(v.receivers)} via Redis`, String(v.redis.rounds), fixed(v.redis.plain.lastMs, 2), fixed(v.redis.history.lastMs, 2), `${v.redis.lastRatio.toFixed(2)}×`,
              fixed(v.redis.plain.cpuUsPerBroadcast, 0), fixed(v.redis.history.cpuUsPerBroadcast, 0), `${v.redis.cpuRatio.toFixed(2)}×`, '']])
      ])
  ]
  return parts.filter((p) => p !== '').join('\n')
}

/** The targets table: every target whose scenario ran. */
export function renderTargets (r: Results, quick: boolean): string {
  const rows = TARGETS.filter((t) => r[t.scenario] !== undefined).map((t) => {
    const c = t.check(r)
    return [t.text, c?.measured ?? '—', c === undefined ? 'n/a' : verdict(c.pass)]
  })
  if (rows.length === 0) return ''
  const note = quick ? '\n_--quick: one repetition and smaller counts (the broadcast target is checked at the largest size measured, the memory target at the connection count used); a smoke test, not a result._\n' : ''
  return `### Targets (fastify-wsx)\n\n${table(['target', 'measured', 'verdict'], rows)}\n${note}`
}
