// Graceful shutdown (Phoenix's drainer): refuse new upgrades, let in-flight handlers
// finish within a grace period, close every socket with 1001 in batches spread over a
// window (so thousands of clients don't reconnect at the same instant), then terminate
// whatever has not finished its close handshake. Bounded: never waits on a dead client.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Core } from './core.js'
import { CloseCode } from './protocol.js'
import type { Connection } from './connection.js'

const CLOSE_HANDSHAKE_WAIT_MS = 500
const BATCH_INTERVAL_MS = 50

export async function drainConnections (core: Core): Promise<void> {
  core.closing = true
  const { graceMs, windowMs } = core.config.shutdown
  const conns = () => [...core.connections] as unknown as Connection[]

  const graceEnd = Date.now() + graceMs
  while (Date.now() < graceEnd && conns().some((c) => c.inflight > 0)) await sleep(10)

  const list = conns()
  const batches = Math.max(1, Math.min(list.length, Math.floor(windowMs / BATCH_INTERVAL_MS)))
  const perBatch = Math.ceil(list.length / batches)
  for (let i = 0; i < list.length; i += perBatch) {
    for (const conn of list.slice(i, i + perBatch)) conn.close(CloseCode.goingAway, 'Server shutting down')
    if (i + perBatch < list.length) await sleep(windowMs / batches)
  }

  const closeEnd = Date.now() + CLOSE_HANDSHAKE_WAIT_MS
  while (Date.now() < closeEnd && core.connections.size > 0) await sleep(10)
  for (const conn of conns()) conn.socket.terminate()
  core.stopHeartbeat()
}
