// Runs the demo (`examples/chat/server.ts`) in its own process on a free port, for tests
// that need real separate instances. Stopped at teardown (SIGTERM, so it writes its coverage).
import { spawn, type ChildProcess } from 'node:child_process'
import { freePort } from './redis.js'
import { stopChild, tsNodeArgs } from './ts-child.js'
import { eventually } from './eventually.js'

interface TapLike { teardown (fn: () => unknown): void }

export interface DemoProcess {
  port: number
  http: string
  ws: string
  proc: ChildProcess
  output: () => string
  login (username: string): Promise<string>
  stop (signal?: NodeJS.Signals): Promise<number | null>
}

export async function startDemo (t: TapLike, env: Record<string, string> = {}): Promise<DemoProcess> {
  const port = await freePort()
  let out = ''
  const proc = spawn(process.execPath, tsNodeArgs('examples/chat/server.ts'), {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  proc.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  t.teardown(() => stopChild(proc))
  const http = `http://127.0.0.1:${port}`
  await waitForHealth(http, proc, () => out, 20_000)
  return {
    port,
    http,
    ws: `ws://127.0.0.1:${port}`,
    proc,
    output: () => out,
    async login (username) {
      const res = await fetch(`${http}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username }) })
      return ((await res.json()) as { token: string }).token
    },
    async stop (signal = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode
      proc.kill(signal)
      return exited
    }
  }
}

/** Polls `GET /health` until the demo answers; fails at once, with its output, if its process ended. */
export async function waitForHealth (http: string, proc: ChildProcess, output: () => string, timeout: number): Promise<void> {
  const NOT_YET = 'answered, not ok'
  const state = await eventually(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return 'exited'
    return (await fetch(`${http}/health`)).ok ? 'up' : NOT_YET
  }, (s) => s !== NOT_YET, { what: 'the demo to answer /health', timeout, interval: 100 })
    .catch((error: Error) => { throw new Error(`${error.message}\n${output()}`) })
  if (state === 'exited') throw new Error(`the demo exited before answering /health:\n${output()}`)
}
