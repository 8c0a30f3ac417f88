// Markdown for the scale scenarios (curve, shape, codec, instances on one Redis and on a
// Redis Cluster) and the SVG plot of the cost curves and the instance runs.
import { PEER_INFO } from './peers.js'
import { renderSvg, type Panel } from './svg.js'
import type { ScaleScenario } from './scale-plan.js'
import type { CurvePoint, CurveResult, InstancesResult, ScaleResults } from './scale.js'
import type { Outcome, PeerName } from './types.js'

export type ScaleOutcomes = { [S in ScaleScenario]?: Outcome<ScaleResults[S]> }

function table (headers: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n')
}
const int = (n: number): string => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—'
const fixed = (n: number, d: number): string => Number.isFinite(n) ? n.toFixed(d) : '—'
const ratio = (a: number, b: number | undefined): string => b === undefined || !Number.isFinite(a / b) ? '—' : `${(a / b).toFixed(2)}×`
const kb = (bytes: number): string => fixed(bytes / 1024, 2)

function section<T> (o: Outcome<T> | undefined, title: string, body: (v: T) => string): string {
  if (o === undefined) return ''
  return `### ${title}\n\n${o.ok ? body(o.value) : `not measured: ${o.reason}`}\n`
}

function curveTable (r: CurveResult): string {
  const raw = r.byPeer.fastify?.points ?? []
  const rows: string[][] = []
  for (const [peer, o] of Object.entries(r.byPeer) as Array<[PeerName, NonNullable<CurveResult['byPeer'][PeerName]>]>) {
    for (const pt of o.points) {
      const ref = raw.find((x) => x.size === pt.size)
      rows.push([PEER_INFO[peer].label, int(pt.size), kb(pt.heapPerConn), kb(pt.rssPerConn), ratio(pt.heapPerConn, ref?.heapPerConn),
        fixed(pt.heartbeatCpuMsPerSec, 1), fixed(pt.openSeconds, 1), int(pt.size / pt.openSeconds), fixed(pt.lastMs, 1), ratio(pt.lastMs, ref?.lastMs)])
    }
    if (!o.ok) rows.push([PEER_INFO[peer].label, `stopped: ${o.reason.replace(/\|/g, '/')}`, '', '', '', '', '', '', '', ''])
  }
  const skipped = r.skipped.length > 0
    ? `\n\nNot measured: N = ${r.skipped.map(int).join(', ')}. The open-file limit here is ${int(r.fdLimit)} per process (\`ulimit -n\`, and it cannot be raised above the hard limit in this environment); each of the server and the load generator holds one descriptor per socket. The largest N that fits was measured instead.`
    : ''
  return table(['peer', 'N', 'heap KB / conn', 'RSS KB / conn', 'heap vs raw', `idle CPU ms/s (ping every ${r.heartbeatMs} ms)`, 'time to open N (s)', 'opened / s', 'broadcast to N: last after (ms)', 'vs raw'], rows) + skipped
}

function instancesTable (v: InstancesResult): string {
  const cluster = v.topology === 'cluster'
  return table(['instances', 'receivers', 'broadcast: last after (ms)', 'deliveries/s', `Redis µs CPU / broadcast${cluster ? ' (3 masters)' : ''}`, 'of which idle', 'hop p50 ms', 'hop p99 ms', 'added p50 ms', 'added p99 ms'],
    v.rows.map((x) => [String(x.instances), int(x.receivers), fixed(x.lastMs, 1), int(x.deliveriesPerSec), fixed(x.redisCpuUsPerBroadcast, 0), fixed(x.redisIdleCpuUsPerBroadcast, 0),
      fixed(x.hop.p50, 3), fixed(x.hop.p99, 3), fixed(x.hop.p50 - v.local.p50, 3), fixed(x.hop.p99 - v.local.p99, 3)])) +
    `\n\nHop: one broadcast at a time from a sender on the first instance to a receiver on the last, before the audience connects; "added" is over one instance without Redis (p50 ${fixed(v.local.p50, 3)} ms, p99 ${fixed(v.local.p99, 3)} ms). With one instance on Redis the hop still goes through Redis. Redis CPU is \`INFO cpu\` over the broadcasts${cluster ? ', summed over the three masters (a cluster forwards every `PUBLISH` to every node)' : ''}; "of which idle" is what it used right after, with nothing published, over as long (its timers${cluster ? ' and the cluster bus' : ''}), so the difference is what the broadcasts cost. Each \`bench.broadcast\` also costs the per-user throttle's Redis call.` +
    (v.failures.length > 0 ? `\n\nFailed: ${v.failures.join('; ')}` : '')
}

/** Every scale section that ran. */
export function renderScale (r: ScaleOutcomes): string {
  return [
    section(r.curve, 'Cost curve: N idle authenticated connections (server side; heap and RSS after forced GC)', curveTable),
    section(r.shape, 'Per-message CPU by route size and group count (the /ws/bench pipeline; one connection is in every group)', (v) => {
      const base = v.rows.find((x) => x.actions === Math.min(...v.rows.map((y) => y.actions)) && x.groups === Math.min(...v.rows.map((y) => y.groups)))
      return table(['actions on the route', 'groups in the process', 'round-trips/s', 'server µs CPU / round-trip', 'vs smallest', 'errors'],
        v.rows.map((x) => [int(x.actions), int(x.groups), int(x.rtps), fixed(x.cpuUsPerRt, 1), ratio(x.cpuUsPerRt, base?.cpuUsPerRt), String(x.errors)])) +
        (v.failures.length > 0 ? `\n\nFailed: ${v.failures.join('; ')}` : '')
    }),
    section(r.codec, 'JSON vs MessagePack on /ws/bench (same server, windows in turns)', (v) => {
      const json = v.rows.find((x) => x.codec === 'JSON')
      return table(['codec', 'round-trips/s', 'server µs CPU / round-trip', 'CPU vs JSON', 'bytes up / request', 'bytes down / reply', 'bytes vs JSON', 'errors'],
        v.rows.map((x) => [x.codec, int(x.rtps), fixed(x.cpuUsPerRt, 1), ratio(x.cpuUsPerRt, json?.cpuUsPerRt), fixed(x.bytesUp, 1), fixed(x.bytesDown, 1),
          ratio(x.bytesUp + x.bytesDown, json === undefined ? undefined : json.bytesUp + json.bytesDown), String(x.errors)])) +
        '\n\nBytes are WebSocket payload bytes (frame headers left out: 6 bytes per client frame and 2 per server frame at these sizes, the same for both codecs).'
    }),
    section(r.instances, 'Instances on one Redis (demo instances, one publisher, the group spread evenly)', instancesTable),
    section(r['instances-cluster'], 'Instances on a 3-master Redis Cluster (demo instances, one publisher, the group spread evenly)', instancesTable)
  ].filter((s) => s !== '').join('\n')
}

/** The plot of the cost curves and instance runs, or null when neither ran. */
export function renderScaleSvg (r: ScaleOutcomes, note: string): string | null {
  const curve = r.curve?.ok === true ? r.curve.value : undefined
  const insts = [r.instances, r['instances-cluster']].flatMap((o) => o?.ok === true ? [o.value] : [])
  if (curve === undefined && insts.length === 0) return null
  const peers = Object.entries(curve?.byPeer ?? {}) as Array<[PeerName, NonNullable<CurveResult['byPeer'][PeerName]>]>
  const series = (pick: (pt: CurvePoint) => number) =>
    peers.map(([peer, o]) => ({ name: PEER_INFO[peer].label, points: o.points.map((pt) => [pt.size, pick(pt)] as [number, number]) }))
  const panels: Panel[] = []
  if (curve !== undefined) {
    panels.push(
      { title: 'Heap per idle connection', xLabel: 'connections (N)', yLabel: 'KB', logX: true, series: series((pt) => pt.heapPerConn / 1024) },
      { title: 'RSS per idle connection', xLabel: 'connections (N)', yLabel: 'KB', logX: true, series: series((pt) => pt.rssPerConn / 1024) },
      { title: `Idle CPU, ping every ${curve.heartbeatMs} ms`, xLabel: 'connections (N)', yLabel: 'ms CPU per s', logX: true, series: series((pt) => pt.heartbeatCpuMsPerSec) },
      { title: 'Time to open N connections', xLabel: 'connections (N)', yLabel: 's', logX: true, series: series((pt) => pt.openSeconds) },
      { title: 'One broadcast to N: last one has it', xLabel: 'connections (N)', yLabel: 'ms', logX: true, series: series((pt) => pt.lastMs) }
    )
  }
  if (insts.length > 0) {
    panels.push({
      title: `Deliveries/s, ${insts[0]!.rows[0]?.receivers ?? 0} receivers over Redis`,
      xLabel: 'instances',
      yLabel: 'deliveries/s',
      series: insts.map((v) => ({
        name: v.topology === 'cluster' ? 'fastify-wsx demo, 3-master Redis Cluster' : 'fastify-wsx demo, one Redis',
        points: v.rows.map((x) => [x.instances, x.deliveriesPerSec] as [number, number])
      }))
    })
  }
  return renderSvg('fastify-wsx: cost curves and instances', note, panels)
}
