// The ordered stages of one inbound frame (README, The protocol):
// decode → envelope → auth gate → throttles → request schema → permissions → hooks →
// handler → response schema → send. The first stage that fails answers; the handler never
// runs for a message that failed an earlier one. Errors take one path: toWireError().
import type { RawData } from 'ws'
import type { FastifyInstance } from 'fastify'
import type { Connection } from './connection.js'
import type { CompiledAction } from '../boot/route.js'
import { FrameRefusedError, decodeFrame } from './json-codec.js'
import { decodeMessagePack } from './msgpack-codec.js'
import { errorFrame, newTraceId, okFrame, parseEnvelope, salvageId, type Envelope, type MessageId } from './envelope.js'
import { WsxError, toWireError } from '../errors.js'
import { BuiltinAction, CloseCode, ErrorCode } from '../../protocol/index.js'
import { toFields } from '../boot/validation.js'
import { runChain } from '../fastify/hook-runner.js'
import { createReplyShim, createRequestView } from '../fastify/request-view.js'
import { authorize } from '../security/handshake.js'
import { subscribeChannel, unsubscribeChannel } from '../broadcast/channels.js'
import { recoverGroup } from '../broadcast/recovery.js'
import { checkThrottles, checkFlood } from '../security/throttle.js'
import { Message } from './message.js'

const PONG = '{"pong":true}'

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

/** Synchronous front half: decode and parse; then the async stages run with a slot held. */
export function dispatchFrame (conn: Connection, data: RawData, binary: boolean): void {
  conn.core.stats.messagesIn++
  if (binary !== conn.msgpack) {
    // JSON connections take text frames only, MessagePack connections binary frames only
    conn.close(conn.authenticated ? CloseCode.unsupportedData : CloseCode.badFrame, binary ? 'Binary frames are not accepted' : 'Text frames are not accepted')
    return
  }
  if (byteLength(data) > conn.route.maxPayload) {
    conn.close(CloseCode.messageTooBig, 'Message too big')
    return
  }
  let decoded: unknown
  let env: Envelope
  try {
    decoded = decode(conn, data)
    env = parseEnvelope(decoded)
  } catch (err) {
    // a frame refused after parsing (prototype key, depth) still has a readable id
    const readable = err instanceof FrameRefusedError ? err.parsed : decoded
    onBadFrame(conn, err instanceof WsxError ? err : new WsxError(ErrorCode.parse, conn.msgpack ? 'The frame is not valid MessagePack.' : 'The frame is not valid JSON.'), salvageId(readable))
    return
  }
  conn.badFrames = 0
  if (conn.debug && !isQuiet(conn, env.action)) {
    conn.log.debug({ action: env.action, id: env.id, trace_id: env.trace_id }, 'wsx frame received')
  }
  // socket.authorize is a barrier: nothing after it starts until it has finished
  const isBarrier = env.action === BuiltinAction.authorize
  if (isBarrier) conn.barrier = true
  conn.inflight++
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
  conn.inflight--
  if (isBarrier) conn.barrier = false
  conn.pump()
}

/** Anything a stage threw becomes a wire error; internal ones are logged, never sent. */
function answerFailure (conn: Connection, env: Envelope, err: unknown): void {
  try {
    const { error, internal } = toWireError(err)
    if (internal) conn.log.error({ err, trace_id: env.trace_id, action: env.action }, 'wsx handler failed')
    replyError(conn, env, error)
  } catch (bug) {
    conn.log.error({ err: bug, trace_id: env.trace_id }, 'wsx: unexpected failure in the message loop')
  }
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
    throttledAnswer(conn, { action: '(invalid)', id, data: {}, trace_id: newTraceId() }, conn.floodWindowEnd - Date.now())
    return
  }
  conn.sendRaw(errorFrame(id, error.toWire()))
  if (++conn.badFrames >= conn.core.config.maxBadFrames) conn.close(CloseCode.badFrame, 'Too many bad frames')
}

export function replyError (conn: Connection, env: Envelope, error: WsxError): void {
  conn.core.stats.outcome(env.action, error.code)
  conn.sendRaw(errorFrame(env.id, error.toWire(), env.trace_id))
  if (conn.debug) logReply(conn, env, error.code)
}

/** Left out of the debug message log: the plugin's `logIgnore` list and `silent` actions. */
function isQuiet (conn: Connection, action: string): boolean {
  return conn.core.config.logIgnore.has(action) || conn.route.actions.get(action)?.silent === true
}

/** The debug message log: what was answered, by trace_id; never the data (it may hold tokens). */
export function logReply (conn: Connection, env: Envelope, outcome: string): void {
  if (isQuiet(conn, env.action)) return
  conn.log.debug({ action: env.action, id: env.id, trace_id: env.trace_id, outcome }, 'wsx reply sent')
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
    throttledAnswer(conn, env, conn.floodWindowEnd - Date.now())
    return false
  }
  switch (env.action) {
    case BuiltinAction.authorize:
      settle(conn, env, isBarrier, authorize(conn, env))
      return true
    case BuiltinAction.subscribe:
    case BuiltinAction.unsubscribe:
      if (!gate(conn, env, null)) return false
      conn.throttledInARow = 0
      settle(conn, env, isBarrier, env.action === BuiltinAction.subscribe ? subscribeChannel(conn, env) : unsubscribeChannel(conn, env))
      return true
    case BuiltinAction.recover:
      if (!gate(conn, env, null)) return false
      settle(conn, env, isBarrier, recoverGroup(conn, env))
      return true
  }
  const action = conn.route.actions.get(env.action)
  if (!gate(conn, env, action)) return false
  runAction(conn, env, action!, isBarrier)
  return true
}

/** Awaits only what is a promise: most checks answer synchronously, and each await costs a turn. */
function isThenable (value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
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

/** The action's stages; answers its own failures and releases the slot. Never rejects. */
async function runAction (conn: Connection, env: Envelope, action: CompiledAction, isBarrier: boolean): Promise<void> {
  try {
    const instance = conn.route.instance as FastifyInstance
    // per-action throttles (the connection's budget was spent in startStages)
    const arrivedAt = Date.now()
    if (action.throttles.length > 0) {
      let retryMs = checkThrottles(conn, env, action)
      if (typeof retryMs !== 'number') retryMs = await retryMs
      if (retryMs > 0) return throttledAnswer(conn, env, retryMs, arrivedAt)
    }
    conn.throttledInARow = 0

    // request schema
    if (action.validate && !action.validate(env.data)) {
      const fields = toFields(action.validate.errors)
      return replyError(conn, env, new WsxError(ErrorCode.validation, 'Invalid input.', { fields }))
    }

    const msg = new Message(env, conn)
    // object-level permissions: the object is loaded once and every check sees it
    if (action.loadObject) msg.object = await action.loadObject.call(instance, msg as never, conn as never)
    for (const permission of action.permissions) {
      let allowed: unknown = permission.call(instance, msg as never, conn as never)
      if (isThenable(allowed)) allowed = await allowed
      if (allowed !== true) return replyError(conn, env, new WsxError(ErrorCode.permissionDenied))
    }
    if (action.preHandler.length > 0) {
      const request = createRequestView(conn.viewSource(), { body: env.data })
      const reply = createReplyShim(request, msg.log, conn.route.replyProto)
      const outcome = await runChain(action.preHandler, instance, request, reply, conn.core.config.hookTimeout)
      if (!outcome.ok) {
        // a throw (of anything, even undefined) or a hang is the server's fault unless it carries an HTTP status
        if (outcome.status === undefined) throw outcome.error ?? new Error('a preHandler hook failed without an error')
        const { error } = toWireError({ statusCode: outcome.status, message: typeof reply.payload === 'string' ? reply.payload : undefined })
        return replyError(conn, env, error)
      }
    }

    const started = performance.now()
    let result: unknown = action.handler.call(instance, msg as never, conn as never)
    if (isThenable(result)) result = await result
    conn.core.stats.handlerTook(performance.now() - started)

    if (env.id !== null) conn.sendRaw(okFrame(env.id, serializeResult(conn, env, action, result), env.trace_id))
    conn.core.stats.outcome(env.action, 'ok')
    if (conn.debug) logReply(conn, env, 'ok')
  } catch (err) {
    answerFailure(conn, env, err)
  } finally {
    release(conn, isBarrier)
  }
}

/** The response schema is a contract: a result that breaks it is a server_error, logged. */
function serializeResult (conn: Connection, env: Envelope, action: CompiledAction, result: unknown): string {
  if (action.serialize) {
    if (!action.validateResponse!(result)) {
      const err = new Error(`response of ${action.name} does not match its schema`)
      conn.log.error({ err, trace_id: env.trace_id, fields: toFields(action.validateResponse!.errors) }, 'wsx response failed its schema')
      throw new WsxError(ErrorCode.server)
    }
    return action.serialize(result)
  }
  return JSON.stringify(result === undefined ? null : result)
}

// A client's timer may fire a hair early: a message this close to the end of the advised
// wait still counts as having waited.
const RETRY_ADVICE_SLACK_MS = 50

/**
 * Answers `throttled` with `retry_after` in whole seconds. Only a message that arrived
 * while an earlier `retry_after` was still running counts toward `maxThrottledInARow`: a
 * client that waits as told is never closed, however long the refusals last (a Redis
 * outage answers every throttled message with a fail-closed refusal).
 */
function throttledAnswer (conn: Connection, env: Envelope, retryMs: number, arrivedAt = Date.now()): void {
  conn.core.stats.throttled++
  const retryAfter = Math.max(1, Math.ceil(retryMs / 1000))
  replyError(conn, env, new WsxError(ErrorCode.throttled, undefined, { retryAfter }))
  const ignoredAdvice = arrivedAt < conn.retryAdvisedUntil - RETRY_ADVICE_SLACK_MS
  conn.retryAdvisedUntil = Math.max(conn.retryAdvisedUntil, Date.now() + retryAfter * 1000)
  if (!ignoredAdvice) {
    conn.throttledInARow = 0
    return
  }
  if (++conn.throttledInARow >= conn.core.config.maxThrottledInARow) conn.close(CloseCode.tooManyMessages, 'Too many messages')
}
