// The control side every bench server shares: after listening it announces its port
// to the orchestrator and answers CPU, memory and connection-count calls over IPC,
// so "server CPU per round-trip" and "heap per idle connection" are measured inside
// the server process, not estimated from the load generator.
import { serveRpc } from '../lib/rpc.js'
import type { CpuSample, MemSample } from '../lib/types.js'

const gc = (globalThis as { gc?: () => void }).gc

function cpuSample (): CpuSample {
  const u = process.cpuUsage()
  return { userUs: u.user, systemUs: u.system }
}

/** Forces full GCs (needs --expose-gc) so the heap holds only live objects. */
async function memSample (): Promise<MemSample> {
  if (gc === undefined) throw new Error('server started without --expose-gc')
  // a few rounds with a macrotask between them, so weak callbacks and finalizers settle
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers }
}

/** What a server tells the control endpoint about itself. */
export interface ServerControl {
  port: number
  /** open sockets as the server sees them */
  connections (): number
}

/** Announces readiness with the port, then serves cpu / mem / connections calls. */
export function startControl (server: ServerControl): void {
  serveRpc({
    cpu: () => cpuSample(),
    mem: () => memSample(),
    connections: () => server.connections()
  }, { port: server.port })
}

/** Exits with a readable message when a server cannot start. */
export function failStart (peer: string, err: unknown): never {
  process.stderr.write(`bench server ${peer}: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
}
