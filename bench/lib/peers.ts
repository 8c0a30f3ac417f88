// The peers: how to start each one's server process and how to reach it.
import { existsSync } from 'node:fs'
import { join, relative } from 'node:path'
import { randomBytes } from 'node:crypto'
import { startChild, repoRoot, type Child } from './children.js'
import type { ClientKind, ConnectSpec, CpuSample, MemSample, PeerName } from './types.js'

/** Static facts about a peer. */
export interface PeerInfo {
  label: string
  script: string
  kind: ClientKind
  /** WebSocket path (socket.io: its own default path under an http:// URL) */
  path: string
}

export const PEER_INFO: Record<PeerName, PeerInfo> = {
  ws: { label: 'raw ws', script: 'bench/servers/ws.ts', kind: 'ws', path: '/' },
  fastify: { label: 'raw @fastify/websocket', script: 'bench/servers/fastify.ts', kind: 'ws', path: '/ws' },
  fastifyJwt: { label: 'raw @fastify/websocket + @fastify/jwt', script: 'bench/servers/fastify-jwt.ts', kind: 'ws-jwt', path: '/ws' },
  socketio: { label: 'socket.io 4 (emit + ack)', script: 'bench/servers/socketio.ts', kind: 'sio', path: '' },
  wsx: { label: 'fastify-wsx /ws/bench', script: 'bench/servers/wsx.ts', kind: 'wsx', path: '/ws/bench' }
}

/** The core servers run on; the load generator gets the other one. */
export const SERVER_CORE = 0

/** One HS256 secret per bench run, shared by every wsx instance (tokens work on all). */
const demoSecret = randomBytes(32).toString('hex')

/** Why the wsx peer cannot run, or null when the demo app is there. */
export function wsxUnavailable (): string | null {
  const override = process.env.WSX_BENCH_DEMO_MODULE
  const app = override !== undefined && override !== '' ? override : join(repoRoot, 'examples/chat/app.ts')
  return existsSync(app) ? null : `${relative(repoRoot, app)} (buildDemo) does not exist yet`
}

/** A peer's server process, started and reachable. */
export interface RunningPeer {
  name: PeerName
  server: Child
  port: number
  /** how the load generator connects (wsx: with tokens) */
  spec: ConnectSpec
  cpu (): Promise<CpuSample>
  mem (): Promise<MemSample>
  connections (): Promise<number>
  stop (): Promise<void>
}

/** Options of {@link startPeer}. */
export interface StartOptions {
  /** wsx: how many distinct users to log in (tokens are handed out round-robin) */
  users?: number
  /** wsx: WSX_DEMO_REDIS_URL */
  redisUrl?: string
  /** wsx: WSX_DEMO_REDIS_CLUSTER, the seed nodes of a Redis Cluster (`host:port,...`) */
  redisCluster?: string
  /** wsx: WSX_DEMO_BENCH_HISTORY, events kept by the `bench` group's history (0 or absent: none) */
  benchHistory?: number
  /** ping every connection at this interval (wsx: WSX_DEMO_HEARTBEAT_MS; raw peers: BENCH_HEARTBEAT_MS) */
  heartbeatMs?: number
  /** another server script speaking the same contract (e.g. bench/servers/wsx-shape.ts) */
  script?: string
  /** extra environment for the server */
  env?: Record<string, string>
  /** a label for logs and errors */
  label?: string
}

/** The environment of a server: the orchestrator's, minus any WSX_DEMO_* it happens to have. */
function serverEnv (name: PeerName, opts: StartOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WSX_DEMO_')) env[k] = v
  if (opts.heartbeatMs !== undefined) {
    env.BENCH_HEARTBEAT_MS = String(opts.heartbeatMs)
    env.WSX_DEMO_HEARTBEAT_MS = String(opts.heartbeatMs)
  }
  Object.assign(env, opts.env)
  // the JWT peer verifies the same tokens the same way (HS256, exp required)
  if (name === 'fastifyJwt') env.WSX_DEMO_SECRET = demoSecret
  if (name === 'wsx') {
    env.WSX_DEMO_SECRET = demoSecret
    // the connection limits still run on every upgrade, they just never trip: the bench
    // opens 5 000 sockets from one address (and one user) and measures handshakes/s
    env.WSX_DEMO_CONNECT_LIMIT = '1000000000'
    env.WSX_DEMO_CONNECT_WINDOW_SECONDS = '10'
    env.WSX_DEMO_MAX_CONNECTIONS_PER_IP = '1000000'
    env.WSX_DEMO_MAX_CONNECTIONS_PER_USER = '1000000'
    // the cost curve goes past the default cap of 10 000 connections per instance
    env.WSX_DEMO_MAX_CONNECTIONS = '1000000'
    env.WSX_DEMO_TOKEN_TTL = '3600'
    if (opts.redisUrl !== undefined) env.WSX_DEMO_REDIS_URL = opts.redisUrl
    if (opts.redisCluster !== undefined) env.WSX_DEMO_REDIS_CLUSTER = opts.redisCluster
    if (opts.benchHistory !== undefined) env.WSX_DEMO_BENCH_HISTORY = String(opts.benchHistory)
  }
  return env
}

/** Logs in `users` demo users (bench0, bench1...) and returns their tokens; never logged. */
async function loginUsers (port: number, users: number): Promise<string[]> {
  const tokens: string[] = []
  for (let i = 0; i < users; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: `bench${i}` })
    })
    const body = await res.json() as { token?: unknown }
    if (res.status !== 200 || typeof body.token !== 'string') throw new Error(`POST /login answered ${res.status}`)
    tokens.push(body.token)
  }
  return tokens
}

/** Starts a peer's server pinned to SERVER_CORE and, for wsx, logs users in. */
export async function startPeer (name: PeerName, opts: StartOptions = {}): Promise<RunningPeer> {
  const info = PEER_INFO[name]
  const server = startChild(`server ${opts.label ?? name}`, opts.script ?? info.script, {
    core: SERVER_CORE,
    nodeArgs: ['--expose-gc'],
    env: serverEnv(name, opts)
  })
  try {
    const ready = await server.ready
    const port = Number(ready.port)
    const scheme = info.kind === 'sio' ? 'http' : 'ws'
    const spec: ConnectSpec = { kind: info.kind, url: `${scheme}://127.0.0.1:${port}${info.path}` }
    if (name === 'wsx' || name === 'fastifyJwt') spec.tokens = await loginUsers(port, opts.users ?? 1)
    return {
      name,
      server,
      port,
      spec,
      cpu: () => server.call<CpuSample>('cpu'),
      mem: () => server.call<MemSample>('mem'),
      connections: () => server.call<number>('connections'),
      stop: () => server.stop()
    }
  } catch (err) {
    await server.stop()
    throw err
  }
}
