// Graceful shutdown (Phoenix's drainer): refuse new upgrades, let in-flight handlers
// finish within a grace period, close every socket with 1001 in batches spread over a
// window (so thousands of clients don't reconnect at the same instant), then terminate
// whatever has not finished its close handshake. Bounded: never waits on a dead client,
// so the whole drain takes at most graceMs + windowMs + CLOSE_HANDSHAKE_WAIT_MS.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Server as HttpServer, IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'
import type { Core } from './core.js'
import { CloseCode, ReadyState } from '../../protocol/index.js'
import type { Connection } from '../connection/connection.js'
import type { WsxSocket } from '../connection/low-level-socket.js'

/** How long a closed socket may take to answer our close frame before it is terminated. */
const CLOSE_HANDSHAKE_WAIT_MS = 500
/** Smallest pause between two batches: finer slicing buys nothing but timers. */
const BATCH_INTERVAL_MS = 50
const POLL_MS = 10

const SHUTDOWN_REASON = 'Server shutting down'

/** How long a refused upgrade's socket may linger after the drain began. */
const REFUSED_UPGRADE_LINGER_MS = 1000

/** The servers a drain looks at besides the core's own connections. */
export interface DrainTargets {
  /** ws's WebSocketServer: every socket, wsx route or not (low-level `app.wsx.socket()`) */
  wss?: { readonly clients?: Set<WebSocket> }
  /** the HTTP server upgrades arrive on */
  http?: Pick<HttpServer, 'on' | 'removeListener'>
}

/** What a drain did, for the shutdown log line. */
export interface DrainReport {
  /** connections sent a 1001 close frame */
  closed: number
  /** sockets that had not finished their close handshake in time and were destroyed */
  terminated: number
  /** handlers still running when the grace period ran out */
  abandonedHandlers: number
  ms: number
}

/**
 * Drains every connection of `core` (and, when given, every other socket of the
 * WebSocket server, e.g. low-level `app.wsx.socket()` routes) with close code 1001.
 * Called from @fastify/websocket's `preClose`; resolves once no socket is left.
 */
export async function drainConnections (core: Core, targets?: DrainTargets): Promise<DrainReport> {
  const started = Date.now()
  core.closing = true
  const { graceMs, windowMs } = core.config.shutdown
  const conns = () => [...core.connections] as unknown as Connection[]
  const { wss: server, http } = targets ?? discoverTargets(conns())
  const stopReaping = http ? reapRefusedUpgrades(http) : () => {}

  const lowLevel = () => [...core.sockets] as unknown as WsxSocket[]

  const abandonedHandlers = await waitForHandlers(conns, graceMs)
  const closed = await closeInBatches(socketsToClose(conns(), lowLevel(), server), windowMs)

  const closeEnd = Date.now() + CLOSE_HANDSHAKE_WAIT_MS
  while (Date.now() < closeEnd && openSockets(conns(), lowLevel(), server).length > 0) await sleep(POLL_MS)
  const leftovers = openSockets(conns(), lowLevel(), server)
  for (const socket of leftovers) socket.terminate()
  core.stopHeartbeat()
  stopReaping()

  const report = { closed, terminated: leftovers.length, abandonedHandlers, ms: Date.now() - started }
  core.log.info(report, 'wsx: connections drained')
  return report
}

/**
 * Fallback when the caller passed no targets: a connection's route knows its Fastify
 * instance, hence the HTTP and WebSocket servers. Without any connection there is no
 * socket to close, only refused upgrades to reap, which then go unreaped.
 */
function discoverTargets (list: Connection[]): DrainTargets {
  const instance = list[0]?.route.instance as { server?: HttpServer, websocketServer?: DrainTargets['wss'] } | undefined
  return { ...(instance?.websocketServer && { wss: instance.websocketServer }), ...(instance?.server && { http: instance.server }) }
}

/**
 * While closing, Fastify answers every new request 503 before any hook runs, so
 * @fastify/websocket's onResponse hook never destroys a refused upgrade's socket; Node
 * leaves upgrade sockets half-open, and `server.close()` would wait for it forever.
 * Destroy such sockets once the peer is done or after a short linger.
 */
function reapRefusedUpgrades (http: NonNullable<DrainTargets['http']>): () => void {
  const onUpgrade = (_req: IncomingMessage, socket: Duplex) => {
    const destroy = () => socket.destroy()
    socket.once('end', destroy)
    setTimeout(destroy, REFUSED_UPGRADE_LINGER_MS).unref()
  }
  http.on('upgrade', onUpgrade)
  return () => { http.removeListener('upgrade', onUpgrade) }
}

/** Waits (at most `graceMs`) until no connection has a handler running; returns how many still do. */
async function waitForHandlers (conns: () => Connection[], graceMs: number): Promise<number> {
  const graceEnd = Date.now() + graceMs
  const running = () => conns().reduce((n, c) => n + (c.inflight > 0 ? c.inflight : 0), 0)
  while (Date.now() < graceEnd && running() > 0) await sleep(POLL_MS)
  return running()
}

/** One closer per socket: a wsx Connection or low-level socket closes through its own bookkeeping. */
function socketsToClose (list: Connection[], lowLevel: WsxSocket[], server?: DrainTargets['wss']): Array<() => void> {
  const closers: Array<() => void> = []
  const seen = new Set<WebSocket>()
  for (const conn of list) {
    seen.add(conn.socket)
    closers.push(() => conn.close(CloseCode.goingAway, SHUTDOWN_REASON))
  }
  for (const socket of lowLevel) {
    seen.add(socket.raw)
    closers.push(() => socket.close(CloseCode.goingAway, SHUTDOWN_REASON))
  }
  for (const socket of server?.clients ?? []) {
    if (seen.has(socket) || socket.readyState !== ReadyState.open) continue
    closers.push(() => {
      try {
        socket.close(CloseCode.goingAway, SHUTDOWN_REASON)
      } catch {
        socket.terminate()
      }
    })
  }
  return closers
}

/** Runs the closers in evenly spaced batches over `windowMs`; returns how many ran. */
async function closeInBatches (closers: Array<() => void>, windowMs: number): Promise<number> {
  if (closers.length === 0) return 0
  const batches = Math.max(1, Math.min(closers.length, Math.floor(windowMs / BATCH_INTERVAL_MS)))
  const perBatch = Math.ceil(closers.length / batches)
  const pause = windowMs / batches
  for (let i = 0; i < closers.length; i += perBatch) {
    for (const close of closers.slice(i, i + perBatch)) close()
    if (i + perBatch < closers.length) await sleep(pause)
  }
  return closers.length
}

/** Sockets whose close handshake has not completed (OPEN or CLOSING). */
function openSockets (list: Connection[], lowLevel: WsxSocket[], server?: DrainTargets['wss']): WebSocket[] {
  const out = new Set<WebSocket>()
  for (const conn of list) out.add(conn.socket)
  for (const socket of lowLevel) out.add(socket.raw)
  for (const socket of server?.clients ?? []) out.add(socket)
  return [...out].filter((s) => s.readyState === ReadyState.open || s.readyState === ReadyState.closing)
}
