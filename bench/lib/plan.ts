// Command-line options and the plan (counts, durations) of a bench run.
import type { PeerName } from './types.js'
import { SCALE_SCENARIOS, FULL_SCALE_PLAN, QUICK_SCALE_PLAN, type ScalePlan } from './scale-plan.js'

/** Scenarios in the order they run. */
export const SCENARIOS = ['throughput', 'latency', 'broadcast', 'memory', 'handshake', 'redis', 'history', ...SCALE_SCENARIOS] as const
export type Scenario = typeof SCENARIOS[number]

/** Peers in the order they appear in every table. */
export const PEERS: readonly PeerName[] = ['ws', 'fastify', 'fastifyJwt', 'socketio', 'wsx']

/** Counts and durations; `--quick` shrinks them. */
export interface Plan extends ScalePlan {
  quick: boolean
  /** repetitions of throughput and handshakes (the median is reported) */
  reps: number
  throughput: { connections: number, inflight: number, warmupMs: number, windowMs: number }
  latency: { connections: number, rate: number, warmupMs: number, durationMs: number }
  broadcast: { sizes: number[], repeats: number }
  memory: { connections: number }
  handshake: { warmupMs: number, durationMs: number, concurrency: number }
  redis: { count: number, warmup: number }
  /** broadcast with and without history on the same audience, in alternating rounds */
  history: { receivers: number, repeats: number, rounds: number }
}

/** The full plan (issue 6): about 5 minutes on 2 cores. */
export const FULL_PLAN: Plan = {
  quick: false,
  reps: 3,
  throughput: { connections: 50, inflight: 10, warmupMs: 2000, windowMs: 3000 },
  latency: { connections: 50, rate: 10_000, warmupMs: 1000, durationMs: 5000 },
  broadcast: { sizes: [1000, 5000], repeats: 7 },
  memory: { connections: 5000 },
  handshake: { warmupMs: 500, durationMs: 2000, concurrency: 16 },
  redis: { count: 300, warmup: 30 },
  history: { receivers: 1000, repeats: 15, rounds: 3 },
  ...FULL_SCALE_PLAN
}

/**
 * `--quick`: a smoke test of every scenario (CI runs it), a few seconds each: one
 * repetition, tiny counts and windows. It proves the bench still runs, not what it measures.
 */
export const QUICK_PLAN: Plan = {
  quick: true,
  reps: 1,
  throughput: { connections: 20, inflight: 4, warmupMs: 300, windowMs: 500 },
  latency: { connections: 20, rate: 2000, warmupMs: 300, durationMs: 700 },
  broadcast: { sizes: [100, 200], repeats: 2 },
  memory: { connections: 200 },
  handshake: { warmupMs: 200, durationMs: 500, concurrency: 8 },
  redis: { count: 20, warmup: 5 },
  history: { receivers: 100, repeats: 2, rounds: 1 },
  ...QUICK_SCALE_PLAN
}

/** Parsed command line. */
export interface Options {
  plan: Plan
  scenarios: Scenario[]
  peers: PeerName[]
  /** where the markdown report is written; null = stdout only */
  out: string | null
}

export const USAGE = `usage: tsx bench/run.ts [--quick] [--only=<scenario>[,...]] [--peers=<peer>[,...]] [--out=<file>|--no-out]
  scenarios: ${SCENARIOS.join(', ')}
  peers:     ${PEERS.join(', ')}
  default out: bench/results/latest.md`

function pickList<T extends string> (flag: string, value: string, allowed: readonly T[]): T[] {
  const picked = value.split(',').map((s) => s.trim()).filter((s) => s !== '')
  const unknown = picked.filter((s) => !(allowed as readonly string[]).includes(s))
  if (unknown.length > 0 || picked.length === 0) throw new Error(`${flag}: unknown ${unknown.join(', ') || '(empty)'}; expected ${allowed.join(', ')}`)
  // keep the canonical order whatever order they were given in
  return allowed.filter((a) => picked.includes(a))
}

/** Parses argv (without node and script); throws with a message on a bad flag. */
export function parseArgs (argv: readonly string[], defaultOut: string): Options {
  const opts: Options = { plan: FULL_PLAN, scenarios: [...SCENARIOS], peers: [...PEERS], out: defaultOut }
  for (const arg of argv) {
    const [flag, value = ''] = arg.split('=', 2) as [string, string?]
    if (flag === '--quick') opts.plan = QUICK_PLAN
    else if (flag === '--only') opts.scenarios = pickList('--only', value, SCENARIOS)
    else if (flag === '--peers') opts.peers = pickList('--peers', value, PEERS)
    else if (flag === '--out' && value !== '') opts.out = value
    else if (flag === '--no-out') opts.out = null
    else throw new Error(`unknown argument ${arg}`)
  }
  return opts
}
