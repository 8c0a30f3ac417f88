// The request logic of the raw peers (raw ws, raw @fastify/websocket), written to
// match what the demo's /ws/bench route does, so the comparison is fair: every frame is
// parsed as JSON, dispatched on `action`, and the reply `{id, ok: true, data}` is
// serialized. A broadcast serializes the `bench.tick` event once and writes the same
// bytes to every socket, as fastify-wsx does (README.md#groups-channels-and-presence).

import { WebSocket } from 'ws'

/** Both raw peers hand out `ws` sockets (@fastify/websocket wraps the same library). */
type RawSocket = WebSocket

/** Writes one pre-serialized text frame to every open socket. */
function broadcastFrame (sockets: Iterable<RawSocket>, frame: Buffer): void {
  for (const s of sockets) {
    if (s.readyState === WebSocket.OPEN) s.send(frame, { binary: false })
  }
}

function replyError (socket: RawSocket, id: unknown, code: string): void {
  socket.send(JSON.stringify({ id: id ?? null, ok: false, error: { code, detail: code } }))
}

/** Handles one inbound text frame of a raw peer. */
export function handleFrame (socket: RawSocket, raw: string, everyone: () => Iterable<RawSocket>): void {
  let msg: { id?: unknown, action?: unknown, data?: unknown }
  try {
    msg = JSON.parse(raw)
  } catch {
    replyError(socket, null, 'parse_error')
    return
  }
  if (typeof msg !== 'object' || msg === null) {
    replyError(socket, null, 'parse_error')
    return
  }
  const data = msg.data ?? {}
  switch (msg.action) {
    case 'bench.echo':
      socket.send(JSON.stringify({ id: msg.id, ok: true, data }))
      return
    case 'bench.broadcast':
      broadcastFrame(everyone(), Buffer.from(JSON.stringify({ action: 'bench.tick', data })))
      socket.send(JSON.stringify({ id: msg.id, ok: true, data: { sent: true } }))
      return
    default:
      replyError(socket, msg.id, 'not_found')
  }
}

/**
 * The usual `ws` liveness loop, for comparisons at the same heartbeat: every `ms`, ping each
 * socket and terminate one that did not answer the previous ping. Off unless
 * BENCH_HEARTBEAT_MS is set (the orchestrator sets it for the cost-curve scenario).
 */
export function startHeartbeat (sockets: () => Iterable<RawSocket>): void {
  const ms = Number(process.env.BENCH_HEARTBEAT_MS ?? 0)
  if (!(ms > 0)) return
  const alive = new WeakMap<RawSocket, boolean>()
  const timer = setInterval(() => {
    for (const s of sockets()) {
      if (alive.get(s) === false) {
        s.terminate()
        continue
      }
      if (!alive.has(s)) s.on('pong', () => alive.set(s, true))
      alive.set(s, false)
      s.ping()
    }
  }, ms)
  timer.unref()
}
