// One frame, in order (docs/protocol.md#how-a-frame-is-processed, docs/architecture.md#lifecycle-of-a-message): decode.ts reads its envelope; here it takes a slot in the
// connection's loop (socket.authorize is a barrier: nothing after it starts until it has
// finished), spends the message budget, and goes to a built-in or, through the fail-closed
// auth gate, to run-action.ts. Every outcome is answered through answer.ts.
import type { RawData } from 'ws'
import type { Connection } from './connection.js'
import type { CompiledAction } from '../boot/route.js'
import { okFrame, type Envelope } from './envelope.js'
import { readEnvelope } from './decode.js'
import { runAction } from './run-action.js'
import { answerFailure, isQuiet, replyError, throttledAnswer } from './answer.js'
import { WsxError } from '../errors.js'
import { BuiltinAction, CloseCode, ErrorCode } from '../../protocol/index.js'
import { checkFlood } from '../security/throttle.js'
import { authorize } from '../security/handshake.js'
import { subscribeChannel, unsubscribeChannel } from '../broadcast/channels.js'
import { recoverGroup } from '../broadcast/recovery.js'

const PONG = '{"pong":true}'

/** Synchronous front half: decode and parse; then the async stages run with a slot held. */
export function dispatchFrame (conn: Connection, data: RawData, binary: boolean): void {
  conn.core.stats.messagesIn++
  const env = readEnvelope(conn, data, binary)
  if (env === null) return
  if (conn.debug && !isQuiet(conn, env.action)) {
    conn.log.debug({ action: env.action, id: env.id, trace_id: env.trace_id }, 'wsx frame received')
  }
  // socket.authorize is a barrier: nothing after it starts until it has finished
  const isBarrier = env.action === BuiltinAction.authorize
  conn.takeSlot(isBarrier)
  try {
    // true: asynchronous work took the slot and will release it itself
    if (startStages(conn, env, isBarrier)) return
  } catch (err) {
    answerFailure(conn, env, err)
  }
  release(conn, isBarrier)
}

/** Frees the connection's slot and starts what waited behind it. */
function release (conn: Connection, isBarrier: boolean): void {
  conn.releaseSlot(isBarrier)
}

/** Awaits a built-in's work, answers its failure, and releases the slot. Never rejects. */
async function settle (conn: Connection, env: Envelope, isBarrier: boolean, work: Promise<void>): Promise<void> {
  try {
    await work
  } catch (err) {
    answerFailure(conn, env, err)
  } finally {
    release(conn, isBarrier)
  }
}

/**
 * Runs the synchronous stages; returns true when asynchronous work now owns the slot.
 * Only actions and the rarer built-ins go async, each through exactly one async function.
 */
function startStages (conn: Connection, env: Envelope, isBarrier: boolean): boolean {
  if (env.action === BuiltinAction.ping) {
    // liveness stays answerable even for a throttled client; it costs one short write
    if (env.id !== null) conn.sendRaw(okFrame(env.id, PONG, env.trace_id))
    conn.core.stats.outcome(env.action, 'ok')
    return false
  }
  // every other frame spends the connection's budget before it is answered at all, so
  // not_found, not_authenticated and the built-ins cannot be made to answer without limit
  if (!checkFlood(conn)) {
    throttledAnswer(conn, env, conn.budget.msUntilWindowEnds())
    return false
  }
  switch (env.action) {
    case BuiltinAction.authorize:
      settle(conn, env, isBarrier, authorize(conn, env))
      return true
    case BuiltinAction.subscribe:
    case BuiltinAction.unsubscribe:
      if (!gate(conn, env, null)) return false
      conn.budget.passed()
      settle(conn, env, isBarrier, env.action === BuiltinAction.subscribe ? subscribeChannel(conn, env) : unsubscribeChannel(conn, env))
      return true
    case BuiltinAction.recover:
      if (!gate(conn, env, null)) return false
      settle(conn, env, isBarrier, recoverGroup(conn, env))
      return true
  }
  const action = conn.route.actions.get(env.action)
  if (!gate(conn, env, action)) return false
  runAction(conn, env, action!, () => release(conn, isBarrier))
  return true
}

/**
 * The fail-closed gate: before authentication, a protected or unknown action answers
 * not_authenticated (an unauthenticated peer cannot tell them apart); after it, unknown
 * is not_found. Returns false when it answered.
 */
function gate (conn: Connection, env: Envelope, action: CompiledAction | null | undefined): boolean {
  const builtin = action === null
  const isPublic = action?.public === true
  if ((!conn.authenticated || conn.expired) && !isPublic) {
    if (!conn.authenticated && conn.route.handshake?.strict) {
      conn.close(CloseCode.notAuthenticated, 'Not authenticated')
      return false
    }
    replyError(conn, env, new WsxError(ErrorCode.notAuthenticated))
    return false
  }
  if (!builtin && !action) {
    replyError(conn, env, new WsxError(ErrorCode.notFound))
    return false
  }
  return true
}
