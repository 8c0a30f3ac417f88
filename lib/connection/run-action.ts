// An action's own stages, after the dispatcher's auth gate let it through: per-action
// throttles → request schema → loadObject → permissions → preHandler hooks → handler →
// response schema and serializer → reply. The first stage that fails answers; the handler
// never runs for a message that failed an earlier one.
import type { FastifyInstance } from 'fastify'
import type { Connection } from './connection.js'
import type { CompiledAction } from '../boot/route.js'
import { okFrame, type Envelope } from './envelope.js'
import { Message } from './message.js'
import { answerFailure, logReply, replyError, throttledAnswer } from './answer.js'
import { WsxError, toWireError } from '../errors.js'
import { ErrorCode } from '../../protocol/index.js'
import { toFields } from '../boot/validation.js'
import { runChain } from '../fastify/hook-runner.js'
import { createReplyShim, createRequestView } from '../fastify/request-view.js'
import { checkThrottles } from '../security/throttle.js'

/** Awaits only what is a promise: most checks answer synchronously, and each await costs a turn. */
function isThenable (value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

/** Runs the action's stages and answers their failures; `done` frees the slot. Never rejects. */
export async function runAction (conn: Connection, env: Envelope, action: CompiledAction, done: () => void): Promise<void> {
  try {
    const instance = conn.route.instance as FastifyInstance
    // per-action throttles (the connection's budget was spent by the dispatcher)
    const arrivedAt = Date.now()
    if (action.throttles.length > 0) {
      let retryMs = checkThrottles(conn, env, action)
      if (typeof retryMs !== 'number') retryMs = await retryMs
      if (retryMs > 0) return throttledAnswer(conn, env, retryMs, arrivedAt)
    }
    conn.budget.passed()

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
    done()
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
