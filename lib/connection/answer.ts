// Where every stage of a frame reports its outcome: error replies, the debug message log,
// and the `throttled` answer with its 4429 rule. A leaf: it imports no other stage, so
// the decoder, the dispatcher, the action runner and the built-ins all depend on it and
// never on each other.
import type { Connection } from './connection.js'
import { errorFrame, type Envelope } from './envelope.js'
import { WsxError, toWireError } from '../errors.js'
import { CloseCode, ErrorCode } from '../../protocol/index.js'

/** Answers an error, counts it in the stats, and logs it at debug level. */
export function replyError (conn: Connection, env: Envelope, error: WsxError): void {
  conn.core.stats.outcome(env.action, error.code)
  conn.sendRaw(errorFrame(env.id, error.toWire(), env.trace_id))
  if (conn.debug) logReply(conn, env, error.code)
}

/** Anything a stage threw becomes a wire error; internal ones are logged, never sent. */
export function answerFailure (conn: Connection, env: Envelope, err: unknown): void {
  try {
    const { error, internal } = toWireError(err)
    if (internal) conn.log.error({ err, trace_id: env.trace_id, action: env.action }, 'wsx handler failed')
    replyError(conn, env, error)
  } catch (bug) {
    conn.log.error({ err: bug, trace_id: env.trace_id }, 'wsx: unexpected failure in the message loop')
  }
}

/** Left out of the debug message log: the plugin's `logIgnore` list and `silent` actions. */
export function isQuiet (conn: Connection, action: string): boolean {
  return conn.core.config.logIgnore.has(action) || conn.route.actions.get(action)?.silent === true
}

/** The debug message log: what was answered, by trace_id; never the data (it may hold tokens). */
export function logReply (conn: Connection, env: Envelope, outcome: string): void {
  if (isQuiet(conn, env.action)) return
  conn.log.debug({ action: env.action, id: env.id, trace_id: env.trace_id, outcome }, 'wsx reply sent')
}

/**
 * Answers `throttled` with `retry_after` in whole seconds. Only a message that arrived
 * while an earlier `retry_after` was still running counts toward `maxThrottledInARow`: a
 * client that waits as told is never closed, however long the refusals last (a Redis
 * outage answers every throttled message with a fail-closed refusal).
 */
export function throttledAnswer (conn: Connection, env: Envelope, retryMs: number, arrivedAt = Date.now()): void {
  conn.core.stats.throttled++
  const retryAfter = Math.max(1, Math.ceil(retryMs / 1000))
  replyError(conn, env, new WsxError(ErrorCode.throttled, undefined, { retryAfter }))
  if (conn.budget.refused(arrivedAt, retryAfter, conn.core.config.maxThrottledInARow)) conn.close(CloseCode.tooManyMessages, 'Too many messages')
}
