// Per-connection flood budget (in memory: it belongs to one socket) and per-action
// throttles (through the shared limiter, so several instances enforce one limit).
import type { Connection } from './connection.js'
import type { CompiledAction } from './route.js'
import type { Envelope } from './envelope.js'
import { Message } from './message.js'

/** Counts one message against the route's per-connection budget; false when over it. */
export function checkFlood (conn: Connection): boolean {
  const limit = conn.route.messageRateLimit
  if (limit === null) return true
  const now = Date.now()
  if (now >= conn.floodWindowEnd) {
    conn.floodWindowEnd = now + limit.windowMs
    conn.floodCount = 0
  }
  return ++conn.floodCount <= limit.max
}

function throttleKey (conn: Connection, env: Envelope, key: CompiledAction['throttles'][number]['key']): string {
  if (typeof key === 'function') return 'f:' + key(new Message(env, conn) as never, conn as never)
  if (key === 'connection') return 'c:' + conn.id
  if (key === 'user' && conn.userKey !== null) return 'u:' + conn.userKey
  return 'ip:' + conn.ip
}

/** Resolves 0 when every throttle allows the message, else ms until retry. */
export async function checkThrottles (conn: Connection, env: Envelope, action: CompiledAction): Promise<number> {
  let retryMs = 0
  for (const t of action.throttles) {
    const key = `${t.bucket}:${t.max}/${t.windowMs}:${throttleKey(conn, env, t.key)}`
    const result = await conn.core.limiter.consume(key, t.max, t.windowMs)
    if (!result.allowed) {
      if (result.error) conn.log.warn({ trace_id: env.trace_id }, 'wsx throttle store unavailable: refusing (fail closed)')
      retryMs = Math.max(retryMs, result.retryAfterMs, 1)
    }
  }
  return retryMs
}
