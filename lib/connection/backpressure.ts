// What every socket the plugin owns does about a peer that reads too slowly: a close with
// 1013 as soon as the outbound buffer passes `maxBufferedBytes`, then, because that close
// frame waits behind the very backlog that triggered it, a hard terminate after a grace.
import type { RawData, WebSocket } from 'ws'
import { CloseCode } from '../../protocol/index.js'

/** How long a slow reader's close frame may wait behind its backlog before the socket is destroyed. */
export const SLOW_READER_GRACE_MS = 2000
export const SLOW_READER_REASON = 'Reading too slowly'

/** True when the socket already buffers more than `max` unsent bytes. */
export function isOverBuffered (socket: WebSocket, max: number): boolean {
  return socket.bufferedAmount > max
}

/** Destroys the socket after the grace unless its close handshake finished first. */
export function terminateAfterGrace (socket: WebSocket): void {
  setTimeout(() => socket.terminate(), SLOW_READER_GRACE_MS).unref()
}

/** Closes a slow reader with 1013 and terminates it if the close frame cannot get through. */
export function closeSlowReader (socket: WebSocket): void {
  try {
    socket.close(CloseCode.tryAgainLater, SLOW_READER_REASON)
  } catch {
    socket.terminate()
    return
  }
  terminateAfterGrace(socket)
}

/** Bytes of an inbound frame as ws delivers it (a Buffer, a fragment list or an ArrayBuffer). */
export function rawByteLength (data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0)
  return Buffer.isBuffer(data) ? data.length : data.byteLength
}
