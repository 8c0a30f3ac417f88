// `npm run bench`: raw ws, raw @fastify/websocket (without and with @fastify/jwt), socket.io
// and fastify-wsx side by side, then the scale scenarios (cost curves, app shape, codecs,
// instances). Each server runs in its own process pinned to core 0 (taskset), the load
// generator in another pinned to core 1; the tables go to stdout and bench/results/latest.md,
// the plot to bench/results/latest.svg. Exits 1 when a scenario or a peer failed.
// Run with --help for the flags. Never run by the test suite.
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { installExitHooks, pinSelf, startChild, hasTaskset, repoRoot, type Child } from './lib/children.js'
import { parseArgs, USAGE, type Options, type Scenario } from './lib/plan.js'
import { PEER_INFO, SERVER_CORE, wsxUnavailable } from './lib/peers.js'
import { INTERLEAVED_DRIVERS, PER_PEER_DRIVERS, NotApplicable, type DriverContext, type PeerOutcomes } from './lib/scenarios.js'
import { renderTables, renderTargets, type Results } from './lib/report.js'
import { SCALE_DRIVERS, NotSelected, fdLimit, partialFailures } from './lib/scale.js'
import { SCALE_SCENARIOS, type ScaleScenario } from './lib/scale-plan.js'
import { renderScale, renderScaleSvg, type ScaleOutcomes } from './lib/report-scale.js'
import type { PeerName } from './lib/types.js'

const LOAD_CORE = 1
const log = (line: string): void => { process.stderr.write(`${line}\n`) }

/** Sockets a scenario holds at once, per process (clients in the load generator, servers in theirs). */
function socketsNeeded (opts: Options): number {
  const { plan, scenarios } = opts
  let n = plan.throughput.connections
  if (scenarios.includes('broadcast')) n = Math.max(n, ...plan.broadcast.sizes.map((s) => s + 1))
  if (scenarios.includes('memory')) n = Math.max(n, plan.memory.connections)
  if (scenarios.includes('history')) n = Math.max(n, plan.history.receivers + 1)
  // the cost curve measures what fits under the limit and reports the rest as not measured
  if (scenarios.includes('instances') || scenarios.includes('instances-cluster')) n = Math.max(n, plan.instances.receivers + 1)
  return n
}

const isScale = (s: Scenario): s is ScaleScenario => (SCALE_SCENARIOS as readonly string[]).includes(s)

/** Described before pinning: after it, availableParallelism() reports the pinned set. */
function machine (): string {
  const model = cpus()[0]?.model ?? 'unknown CPU'
  return `${availableParallelism()} cores (${model}), Node ${process.version}, ${process.platform}`
}

/** The 1-minute load average; anything else running skews every number. */
function busyWarning (): string | null {
  const load = loadavg()[0] ?? 0
  return load > 0.5 ? `load average ${load.toFixed(2)} at start: other processes compete for the cores, numbers are noisy` : null
}

function startLoad (pinLoad: boolean): Child {
  return startChild('load generator', 'bench/load/worker.ts', pinLoad ? { core: LOAD_CORE } : {})
}

async function main (): Promise<number> {
  const argv = process.argv.slice(2)
  if (argv.includes('--help') || argv.includes('-h')) {
    log(USAGE)
    return 0
  }
  const opts = parseArgs(argv, join(repoRoot, 'bench/results/latest.md'))
  installExitHooks()

  const need = socketsNeeded(opts) + 256
  const limit = fdLimit()
  if (!(limit >= need)) {
    log(`bench: the open-file limit is ${limit}, these scenarios need about ${need} descriptors per process.`)
    log(`       raise it in this shell first, e.g. \`ulimit -n ${Math.max(need, 12_000)}\`, then run again.`)
    return 2
  }
  const host = machine()
  const busy = busyWarning()
  if (busy !== null) log(`bench: WARNING ${busy}`)
  const twoCores = availableParallelism() >= 2
  if (!twoCores) log('bench: WARNING fewer than 2 cores: server and load generator share a core; numbers are not comparable.')
  if (!hasTaskset) log('bench: WARNING taskset not found: processes are not pinned to cores.')
  // the orchestrator stays off the servers' core too
  if (twoCores) pinSelf(LOAD_CORE)

  const wsxReason = opts.peers.includes('wsx') ? wsxUnavailable() : null
  if (wsxReason !== null) log(`bench: skipping fastify-wsx: ${wsxReason}`)
  const peers = opts.peers.filter((p) => p !== 'wsx' || wsxReason === null)

  const startedAt = new Date()
  const t0 = Date.now()
  let load = startLoad(twoCores)
  await load.ready
  const results: Results = {}
  const scale: ScaleOutcomes = {}
  let failures = 0

  // a failed scenario may leave the load generator mid-phase: start a clean one
  const freshLoad = async (): Promise<void> => {
    await load.stop()
    load = startLoad(twoCores)
    await load.ready
  }
  for (const scenario of opts.scenarios) {
    log(`\n== ${scenario}`)
    if (isScale(scenario)) {
      try {
        const value = await (SCALE_DRIVERS[scenario] as (c: DriverContext, p: typeof peers) => Promise<never>)({ plan: opts.plan, load, log }, peers)
        ;(scale as Record<string, unknown>)[scenario] = { ok: true, value }
        for (const f of partialFailures(scenario, value)) {
          failures++
          log(`  FAILED: ${f}`)
        }
      } catch (err) {
        if (!(err instanceof NotSelected)) failures++
        scale[scenario] = { ok: false, reason: err instanceof Error ? err.message : String(err) }
        log(`  FAILED: ${scale[scenario]!.ok === false ? (scale[scenario] as { reason: string }).reason : ''}`)
        await freshLoad()
      }
      continue
    }
    let byPeer: PeerOutcomes = {}
    if (scenario === 'throughput' || scenario === 'handshake') {
      byPeer = await INTERLEAVED_DRIVERS[scenario](peers, { plan: opts.plan, load, log })
      if (Object.values(byPeer).some((o) => !o.ok)) await freshLoad()
    } else {
      for (const peer of peers) {
        if ((scenario === 'redis' || scenario === 'history') && peer !== 'wsx') continue
        log(`  ${PEER_INFO[peer].label} ...`)
        const started = Date.now()
        try {
          const driver = PER_PEER_DRIVERS[scenario] as (p: PeerName, c: DriverContext) => Promise<unknown>
          byPeer[peer] = { ok: true, value: await driver(peer, { plan: opts.plan, load, log }) }
          log(`    done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
        } catch (err) {
          if (!(err instanceof NotApplicable)) {
            const reason = err instanceof Error ? err.message : String(err)
            byPeer[peer] = { ok: false, reason }
            log(`    FAILED: ${reason}`)
          }
          await freshLoad()
        }
      }
      if (scenario === 'redis' && !peers.includes('wsx')) byPeer.wsx = { ok: false, reason: wsxReason ?? 'fastify-wsx not selected' }
    }
    failures += Object.values(byPeer).filter((o) => !o.ok).length
    ;(results as Record<string, PeerOutcomes>)[scenario] = byPeer
  }
  await load.stop()

  const minutes = ((Date.now() - t0) / 60_000).toFixed(1)
  const command = `tsx bench/run.ts${argv.length > 0 ? ' ' + argv.join(' ') : ''}`
  const p = opts.plan
  const header = [
    `## Bench run ${startedAt.toISOString()}`,
    '',
    `- machine: ${host}`,
    `- command: \`${command}\` (${minutes} min)`,
    `- pinning: ${hasTaskset && twoCores ? `servers on core ${SERVER_CORE}, load generator on core ${LOAD_CORE} (taskset)` : 'none'}`,
    `- payload: 100-byte string; ${p.quick ? '--quick: 1 repetition, smaller counts' : `medians of ${p.reps} for throughput and handshakes`}`,
    ...(busy !== null ? [`- WARNING: ${busy}`] : []),
    ...(wsxReason !== null ? [`- fastify-wsx skipped: ${wsxReason}`] : []),
    ''
  ].join('\n')
  const report = [
    header,
    renderTables(results, {
      quick: p.quick,
      throughputLabel: `${p.throughput.connections} connections × ${p.throughput.inflight} in flight, ${p.throughput.windowMs / 1000} s windows`,
      latencyLabel: `${p.latency.rate.toLocaleString('en-US')} req/s over ${p.latency.connections} connections, ${p.latency.durationMs / 1000} s`,
      memoryLabel: `${p.memory.connections.toLocaleString('en-US')} connections`
    }),
    renderScale(scale),
    renderTargets(results, p.quick)
  ].join('\n')

  process.stdout.write(`\n${report}\n`)
  if (opts.out !== null) {
    mkdirSync(dirname(opts.out), { recursive: true })
    writeFileSync(opts.out, `${report}\n`)
    log(`bench: written to ${relative(process.cwd(), opts.out)}`)
    const svg = renderScaleSvg(scale, `${startedAt.toISOString()} · ${host}${p.quick ? ' · --quick smoke, not a result' : ''}`)
    if (svg !== null) {
      const svgPath = opts.out.replace(/\.md$/, '') + '.svg'
      writeFileSync(svgPath, svg)
      log(`bench: plot written to ${relative(process.cwd(), svgPath)}`)
    }
  }
  if (failures > 0) log(`bench: ${failures} scenario or peer failure(s)`)
  return failures > 0 ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`bench: ${err instanceof Error ? err.message : String(err)}`)
    process.exit(1)
  }
)
