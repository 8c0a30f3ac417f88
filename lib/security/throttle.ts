// The per-connection message budget (budget.ts, in memory: it belongs to one socket) and per-action
// throttles (through the shared limiter, so several instances enforce one limit).
import type { Connection } from '../connection/connection.js'
import type { CompiledAction } from '../boot/route.js'
import type { Envelope } from '../connection/envelope.js'
import { Message } from '../connection/message.js'
import type { ConsumeResult } from './stores/limiter.js'

/** Counts one message against the route's per-connection budget; false when over it. */
export function checkFlood (conn: Connection): boolean {
  return conn.budget.spend(conn.route.messageRateLimit)
}

function throttleKey (conn: Connection, env: Envelope, key: CompiledAction['throttles'][number]['key']): string {
  if (typeof key === 'function') return 'f:' + key(new Message(env, conn) as never, conn as never)
  if (key === 'connection') return 'c:' + conn.id
  if (key === 'user' && conn.userKey !== null) return 'u:' + conn.userKey
  return 'ip:' + conn.ip
}

/**
 * 0 when every throttle allows the message, else ms until retry. Synchronous with the
 * in-process store (no promise or timer per message); a promise with Redis.
 */
export function checkThrottles (conn: Connection, env: Envelope, action: CompiledAction): number | Promise<number> {
  const consumeNow = conn.core.limiter.consumeNow
  if (consumeNow === undefined) return checkThrottlesAsync(conn, env, action)
  let retryMs = 0
  for (const t of action.throttles) {
    const result = consumeNow(`${t.bucket}:${throttleKey(conn, env, t.key)}`, t.max, t.windowMs)
    if (!result.allowed) retryMs = refusal(conn, env, result, retryMs)
  }
  return retryMs
}

async function checkThrottlesAsync (conn: Connection, env: Envelope, action: CompiledAction): Promise<number> {
  let retryMs = 0
  for (const t of action.throttles) {
    const result = await conn.core.limiter.consume(`${t.bucket}:${throttleKey(conn, env, t.key)}`, t.max, t.windowMs)
    if (!result.allowed) retryMs = refusal(conn, env, result, retryMs)
  }
  return retryMs
}

function refusal (conn: Connection, env: Envelope, result: ConsumeResult, retryMs: number): number {
  if (result.error) conn.log.warn({ trace_id: env.trace_id }, 'wsx throttle store unavailable: refusing (fail closed)')
  return Math.max(retryMs, result.retryAfterMs, 1)
}
