// Starts bench children (servers, load generator) as separate Node processes pinned
// to one core with `taskset` when it exists, and talks to them over IPC (./rpc.ts).
// Every child started here is tracked and killed by pid when the orchestrator exits,
// including on SIGINT/SIGTERM.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { RpcAnswer, ReadyMessage } from './rpc.js'

/** Repository root, so children resolve `tsx` and the project's modules like the parent. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

/** True when `taskset` (util-linux) is on PATH. */
export const hasTaskset = spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0

const live = new Set<ChildProcess>()

function killAll (): void {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null) {
      try { process.kill(child.pid, 'SIGKILL') } catch {}
    }
  }
  live.clear()
}

let exitHooksInstalled = false
/** Installs the exit/signal hooks that kill every live child; idempotent. */
export function installExitHooks (): void {
  if (exitHooksInstalled) return
  exitHooksInstalled = true
  process.on('exit', killAll)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping children\n`)
      killAll()
      process.exit(130)
    })
  }
}

/** Tracks a process spawned elsewhere (e.g. redis-server) so it dies with the bench. */
export function track (child: ChildProcess): void {
  live.add(child)
  child.once('exit', () => live.delete(child))
}

/** Pins the calling process (all its threads) to one core; silently a no-op without taskset. */
export function pinSelf (core: number): void {
  if (!hasTaskset) return
  spawnSync('taskset', ['-a', '-cp', String(core), String(process.pid)], { stdio: 'ignore' })
}

/** Options of {@link startChild}. */
export interface ChildOptions {
  /** core to pin to; undefined = no pinning */
  core?: number
  /** the child's whole environment; default: the orchestrator's */
  env?: NodeJS.ProcessEnv
  /** extra Node flags, e.g. --expose-gc */
  nodeArgs?: string[]
  /** ms to wait for the child's ready message */
  readyTimeoutMs?: number
  /** show the child's stdout (servers' logs are hidden by default) */
  showStdout?: boolean
}

/** A running child with typed calls. */
export class Child {
  readonly name: string
  readonly process: ChildProcess
  readonly ready: Promise<Record<string, unknown>>
  private seq = 0
  private readonly pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()

  constructor (name: string, proc: ChildProcess, readyTimeoutMs: number) {
    this.name = name
    this.process = proc
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not become ready in ${readyTimeoutMs} ms`)), readyTimeoutMs)
      proc.on('message', (msg: unknown) => {
        if (typeof msg !== 'object' || msg === null) return
        if ('ready' in msg) {
          clearTimeout(timer)
          resolve((msg as ReadyMessage).ready)
          return
        }
        this.settle(msg as RpcAnswer)
      })
      proc.once('exit', (code, signal) => {
        clearTimeout(timer)
        const err = new Error(`${name} exited (code ${code ?? 'none'}, signal ${signal ?? 'none'})`)
        reject(err)
        for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(err) }
        this.pending.clear()
      })
    })
    // a rejected ready promise must not crash the process before someone awaits it
    this.ready.catch(() => {})
  }

  private settle (answer: RpcAnswer): void {
    const p = this.pending.get(answer.rpc)
    if (p === undefined) return
    this.pending.delete(answer.rpc)
    clearTimeout(p.timer)
    if (answer.ok) p.resolve(answer.result)
    else p.reject(new Error(`${this.name}: ${answer.error ?? 'failed'}`))
  }

  /** Calls an op in the child; rejects after timeoutMs or if the child dies. */
  call<T> (op: string, args?: unknown, timeoutMs = 60_000): Promise<T> {
    const rpc = ++this.seq
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rpc)
        reject(new Error(`${this.name}: ${op} timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(rpc, { resolve: resolve as (v: unknown) => void, reject, timer })
      this.process.send({ rpc, op, args })
    })
  }

  /** Kills the child by pid and waits (bounded) for it to exit. */
  async stop (): Promise<void> {
    const proc = this.process
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGKILL')
    await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 3000).unref())])
  }
}

/**
 * Starts `script` (a .ts file, run through tsx) in its own process, pinned to
 * `opts.core` when taskset exists, with an IPC channel.
 */
export function startChild (name: string, script: string, opts: ChildOptions = {}): Child {
  const nodeArgv = ['--import', 'tsx', ...(opts.nodeArgs ?? []), script]
  const pinned = hasTaskset && opts.core !== undefined
  const cmd = pinned ? 'taskset' : process.execPath
  const args = pinned ? ['-c', String(opts.core), process.execPath, ...nodeArgv] : nodeArgv
  const proc = spawn(cmd, args, {
    cwd: repoRoot,
    env: opts.env ?? process.env,
    stdio: ['ignore', opts.showStdout === true ? 'inherit' : 'ignore', 'inherit', 'ipc']
  })
  track(proc)
  return new Child(name, proc, opts.readyTimeoutMs ?? 30_000)
}
