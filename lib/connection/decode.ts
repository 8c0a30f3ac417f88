// The front half of a frame, synchronous: the frame type, the route's size limit, the
// connection's encoding (JSON or MessagePack) and the envelope. A frame that fails here
// never reaches the dispatcher: before authentication it closes the socket (4400); after
// it, it is answered `parse_error` and counted toward `maxBadFrames`.
import type { RawData } from 'ws'
import type { Connection } from './connection.js'
import { FrameRefusedError, decodeFrame } from './json-codec.js'
import { decodeMessagePack } from './msgpack-codec.js'
import { errorFrame, newTraceId, parseEnvelope, salvageId, type Envelope, type MessageId } from './envelope.js'
import { throttledAnswer } from './answer.js'
import { WsxError } from '../errors.js'
import { CloseCode, ErrorCode } from '../../protocol/index.js'
import { checkFlood } from '../security/throttle.js'

/** Bytes on the wire: `maxPayload` is a byte limit, and a UTF-16 length undercounts non-ASCII text. */
function byteLength (data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0)
  return Buffer.isBuffer(data) ? data.length : data.byteLength
}

function toBytes (data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data)
}

/** Decodes one frame in the connection's encoding; throws a SyntaxError when it is not one. */
function decode (conn: Connection, data: RawData): unknown {
  const bytes = toBytes(data)
  return conn.msgpack ? decodeMessagePack(bytes, conn.core.config.maxDepth) : decodeFrame(bytes.toString('utf8'), conn.core.config.maxDepth)
}

/** The frame's envelope, or null when the frame was refused (and already answered or closed). */
export function readEnvelope (conn: Connection, data: RawData, binary: boolean): Envelope | null {
  if (binary !== conn.msgpack) {
    // JSON connections take text frames only, MessagePack connections binary frames only
    conn.close(conn.authenticated ? CloseCode.unsupportedData : CloseCode.badFrame, binary ? 'Binary frames are not accepted' : 'Text frames are not accepted')
    return null
  }
  if (byteLength(data) > conn.route.maxPayload) {
    conn.close(CloseCode.messageTooBig, 'Message too big')
    return null
  }
  let decoded: unknown
  try {
    decoded = decode(conn, data)
    const env = parseEnvelope(decoded)
    conn.badFrames = 0
    return env
  } catch (err) {
    // a frame refused after parsing (prototype key, depth) still has a readable id
    const readable = err instanceof FrameRefusedError ? err.parsed : decoded
    onBadFrame(conn, err instanceof WsxError ? err : new WsxError(ErrorCode.parse, conn.msgpack ? 'The frame is not valid MessagePack.' : 'The frame is not valid JSON.'), salvageId(readable))
    return null
  }
}

/** Before authentication a bad frame closes 4400; after it, 10 in a row do (configurable). */
function onBadFrame (conn: Connection, error: WsxError, id: MessageId): void {
  conn.core.stats.outcome('(invalid)', error.code)
  if (!conn.authenticated) {
    conn.close(CloseCode.badFrame, 'Bad frame before authentication')
    return
  }
  // a bad frame is an inbound frame like any other: it spends the budget, and past it the
  // answer is `throttled` (which ends in 4429) rather than one more parse_error
  if (!checkFlood(conn)) {
    throttledAnswer(conn, { action: '(invalid)', id, data: {}, trace_id: newTraceId() }, conn.budget.msUntilWindowEnds())
    return
  }
  conn.sendRaw(errorFrame(id, error.toWire()))
  if (++conn.badFrames >= conn.core.config.maxBadFrames) conn.close(CloseCode.badFrame, 'Too many bad frames')
}
