// The in-band handshake: `socket.authorize` presents its credential to the route's own
// strategies as the equivalent HTTP request would carry it (lib/upgrade/credentials.ts), through
// a real in-process request (lib/upgrade/authenticate.ts), so a strategy written for HTTP runs
// unchanged. Failures count against the client address in the lock (lib/security/auth-lock.ts),
// shared with failures at the upgrade; reconnecting does not reset them, nor does a success.
import type { Connection } from '../connection/connection.js'
import { userKeyOf } from '../connection/user-key.js'
import type { Envelope } from '../connection/envelope.js'
import { errorFrame, eventFrame } from '../connection/envelope.js'
import { WsxError } from '../errors.js'
import { CloseCode, ErrorCode, ServerEvent } from '../../protocol/index.js'
import { authenticateInBand, type AuthResult } from '../upgrade/authenticate.js'
import { inbandHeaders } from '../upgrade/credentials.js'
import { checkLock, countFailure, lockPolicy } from './auth-lock.js'
import { replyError } from '../connection/answer.js'

function authorizedFrame (env: Envelope): string {
  return eventFrame(ServerEvent.authorized, { authenticated: true, via: 'authorize' }, { id: env.id })
}

export async function authorize (conn: Connection, env: Envelope): Promise<void> {
  const route = conn.route
  const handshake = route.handshake
  if (!handshake || route.handshakeStrategies.length === 0) {
    return replyError(conn, env, new WsxError(ErrorCode.authenticationFailed, 'This route does not accept in-band authentication.'))
  }
  const lock = await checkLock(conn.core, conn.ip)
  if (lock.locked) {
    conn.core.stats.authFailures++
    return replyError(conn, env, new WsxError(ErrorCode.locked, undefined, { retryAfter: lock.retryAfter }))
  }

  const result = await verifyCredentials(conn, env)
  if (!result.ok) return failAttempt(conn, env)
  const user = result.user

  if (conn.authenticated) {
    // a refresh must not change who the connection is
    if (userKeyOf(user) !== conn.userKey) {
      return replyError(conn, env, new WsxError(ErrorCode.permissionDenied, 'The new token names another user.'))
    }
    conn.user = user
    conn.keepCredentials(result)
    conn.clearExpiry()
    conn.scheduleExpiry()
    conn.core.stats.outcome(env.action, 'ok')
    conn.sendRaw(authorizedFrame(env))
    return
  }
  if (!conn.setIdentity(user, 'authorize')) return
  conn.keepCredentials(result)
  conn.core.stats.outcome(env.action, 'ok')
  conn.sendRaw(authorizedFrame(env))
  conn.scheduleExpiry()
  conn.afterAuthenticated()
}

/** Runs the route's strategies on the frame's credential; a crash or hang is logged once with the trace id. */
async function verifyCredentials (conn: Connection, env: Envelope): Promise<AuthResult | { ok: false }> {
  const headers = inbandHeaders(conn.headers, env.data, conn.route.credentials)
  if (headers === null) return { ok: false }
  const strategies = conn.route.handshakeStrategies.length
  const result = await authenticateInBand(conn.route.instance, {
    url: conn.requestUrl,
    ip: conn.ip,
    headers
  }, conn.core.config.hookTimeout * (strategies + 1))
  if (result.fault !== undefined) {
    conn.log.error({ err: result.fault, trace_id: env.trace_id, action: env.action }, 'wsx: an authentication strategy failed in-band')
  }
  return result
}

async function failAttempt (conn: Connection, env: Envelope): Promise<void> {
  const result = await countFailure(conn.core, conn.ip, lockPolicy(conn.core, conn.route.handshake))
  conn.core.stats.outcome(env.action, ErrorCode.authenticationFailed)
  const error = new WsxError(ErrorCode.authenticationFailed, undefined, { attemptsLeft: result.attemptsLeft })
  conn.sendRaw(errorFrame(env.id, error.toWire(), env.trace_id))
  if (result.locked && !conn.authenticated) conn.close(CloseCode.lockedOut, 'Too many failed attempts')
}
