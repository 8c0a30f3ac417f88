// The liveness rule every socket the plugin owns follows, envelope or low-level: the core's
// heartbeat interval pings it, and a peer that let two pings go unanswered is terminated
// (a dead peer sends no close frame, so waiting for one would keep it forever).
import type { WebSocket } from 'ws'
import { ReadyState } from '../../protocol/index.js'

const MAX_MISSED_PONGS = 2

/** One heartbeat tick for `socket`; returns the missed-pong count to keep until its next pong. */
export function heartbeatTick (socket: WebSocket, missedPongs: number): number {
  if (missedPongs >= MAX_MISSED_PONGS) {
    socket.terminate()
    return missedPongs
  }
  if (socket.readyState === ReadyState.open) socket.ping()
  return missedPongs + 1
}
