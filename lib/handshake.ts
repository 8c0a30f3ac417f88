// The in-band handshake (PROTOCOL §3): `socket.authorize` runs the route's own strategies
// on a request view whose only credential is `Authorization: Bearer <token>`, so an HTTP
// strategy like `request.jwtVerify()` works unchanged. Failures count against the client
// address in the lockout store (reconnecting does not reset them).
import type { FastifyInstance } from 'fastify'
import type { Connection } from './connection.js'
import { userKeyOf } from './connection.js'
import type { Envelope } from './envelope.js'
import { errorFrame, eventFrame } from './envelope.js'
import { WsxError } from './errors.js'
import { CloseCode, ErrorCode, ServerEvent } from './protocol.js'
import { runStrategies } from './hooks.js'
import { createReplyShim, createRequestView } from './request-view.js'
import { replyError } from './handle-message.js'

const MAX_TOKEN_LENGTH = 16 * 1024

function lockKey (conn: Connection): string {
  return `auth:${conn.ip}`
}

function authorizedFrame (env: Envelope): string {
  return eventFrame(ServerEvent.authorized, { authenticated: true, via: 'authorize' }, { id: env.id })
}

export async function authorize (conn: Connection, env: Envelope): Promise<void> {
  const route = conn.route
  const handshake = route.handshake
  if (!handshake || route.handshakeStrategies.length === 0) {
    return replyError(conn, env, new WsxError(ErrorCode.authenticationFailed, 'This route does not accept in-band authentication.'))
  }
  const lock = await conn.core.lockout.check(lockKey(conn))
  if (lock.locked) {
    conn.core.stats.authFailures++
    return replyError(conn, env, new WsxError(ErrorCode.locked, undefined, { retryAfter: lock.retryAfter }))
  }

  const token = env.data.token
  const user = typeof token === 'string' && token.length > 0 && token.length <= MAX_TOKEN_LENGTH
    ? await verifyToken(conn, token)
    : undefined
  if (user === undefined) return failAttempt(conn, env)

  if (conn.authenticated) {
    // a refresh must not change who the connection is
    if (userKeyOf(user) !== conn.userKey) {
      return replyError(conn, env, new WsxError(ErrorCode.permissionDenied, 'The new token names another user.'))
    }
    conn.user = user
    conn.clearExpiry()
    conn.scheduleExpiry()
    conn.core.stats.outcome(env.action, 'ok')
    conn.sendRaw(authorizedFrame(env))
    return
  }
  await conn.core.lockout.reset(lockKey(conn))
  if (!conn.setIdentity(user, 'authorize')) return
  conn.core.stats.outcome(env.action, 'ok')
  conn.sendRaw(authorizedFrame(env))
  conn.scheduleExpiry()
  conn.afterAuthenticated()
}

/** Runs the route's strategies on the token alone; resolves the user, or undefined. */
async function verifyToken (conn: Connection, token: string): Promise<unknown> {
  const view = createRequestView({ ...conn.viewSource(), user: null }, { headers: { authorization: `Bearer ${token}` }, query: {} })
  const reply = createReplyShim(view, conn.log)
  const outcome = await runStrategies(conn.route.handshakeStrategies, conn.route.instance as FastifyInstance, view, reply)
  if (!outcome.ok) return undefined
  const user = (view as unknown as { user?: unknown }).user
  return user === null || user === undefined ? true : user
}

async function failAttempt (conn: Connection, env: Envelope): Promise<void> {
  const handshake = conn.route.handshake!
  conn.core.stats.authFailures++
  const result = await conn.core.lockout.fail(lockKey(conn), handshake.attempts, handshake.lockSeconds)
  conn.core.stats.outcome(env.action, ErrorCode.authenticationFailed)
  const error = new WsxError(ErrorCode.authenticationFailed, undefined, { attemptsLeft: result.attemptsLeft })
  conn.sendRaw(errorFrame(env.id, error.toWire(), env.trace_id))
  if (result.locked && !conn.authenticated) conn.close(CloseCode.lockedOut, 'Too many failed attempts')
}
