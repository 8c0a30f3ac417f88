// Peer "fastify-wsx": the demo app (examples/chat/app.ts) and its /ws/bench
// route, so every stage runs: JWT at the upgrade, request schema, permission, throttle,
// handler, response serializer. Settings come from the WSX_DEMO_* environment the
// orchestrator sets (secret, high connection limit, optional Redis).
//
// The demo is imported by computed URL, so this file type-checks and the other peers
// still run while the demo is absent; the orchestrator then skips this peer.
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import { startControl, failStart } from './control.js'

/** The part of the demo's contract the bench relies on. */
interface DemoApp {
  listen (opts: { port: number, host: string }): Promise<string>
  server: { address (): AddressInfo | string | null }
  wsx?: { connections?: { size: number } }
  websocketServer?: { clients: { size: number } }
}
/** buildDemo(settingsOverrides, { logger }); the settings come from WSX_DEMO_* (bench/lib/peers.ts). */
type BuildDemo = (overrides?: Record<string, unknown>, opts?: { logger?: boolean }) => DemoApp | Promise<DemoApp>

/**
 * Where the demo lives (bench/run.ts checks the same path before starting this peer).
 * WSX_BENCH_DEMO_MODULE (an absolute path) benches another build of it, e.g. from dist/.
 */
const demoModuleUrl = process.env.WSX_BENCH_DEMO_MODULE !== undefined && process.env.WSX_BENCH_DEMO_MODULE !== ''
  ? pathToFileURL(process.env.WSX_BENCH_DEMO_MODULE)
  : new URL('../../examples/chat/app.ts', import.meta.url)

async function loadBuildDemo (): Promise<BuildDemo> {
  const mod: unknown = await import(demoModuleUrl.href)
  const build = (mod as { buildDemo?: unknown }).buildDemo
  if (typeof build !== 'function') throw new Error('examples/chat/app.ts does not export buildDemo(opts)')
  return build as BuildDemo
}

async function main (): Promise<void> {
  const buildDemo = await loadBuildDemo()
  // logging off like the other peers: a request log line per message would measure pino
  const app = await buildDemo({}, { logger: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address()
  if (addr === null || typeof addr === 'string') throw new Error('demo is not listening on TCP')
  // the connections fastify-wsx tracks; falls back to the raw socket count
  startControl({ port: addr.port, connections: () => app.wsx?.connections?.size ?? app.websocketServer?.clients.size ?? -1 })
}

main().catch((err: unknown) => failStart('wsx', err))
