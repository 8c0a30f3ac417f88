// Runs ordinary Fastify hook functions — `async (request, reply)` or
// `(request, reply, done)` — outside Fastify's own request lifecycle.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { WsxHook } from '../types/route.js'

export interface HookOutcome {
  ok: boolean
  /** what the hook threw, when it threw */
  error?: unknown
  /** the status the hook replied with, when it replied */
  status?: number
}

const kHandshakeOnly = Symbol.for('fastify-wsx.handshakeOnly')

/**
 * Marks a strategy as handshake-only (django-wsx's `handshake_compatible`): it runs only
 * on the token of `socket.authorize`, never at the upgrade, and never sees the upgrade's
 * headers, query or cookies.
 */
export function handshakeOnly<T extends WsxHook> (strategy: T): T {
  Object.defineProperty(strategy, kHandshakeOnly, { value: true })
  return strategy
}

export function isHandshakeOnly (strategy: WsxHook): boolean {
  return (strategy as unknown as Record<symbol, unknown>)[kHandshakeOnly] === true
}

function sent (reply: FastifyReply): boolean {
  return reply.sent
}

/** Runs one hook; resolves how it ended. Never throws. */
export async function runHook (hook: WsxHook, instance: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<HookOutcome> {
  try {
    if (hook.length >= 3) {
      await new Promise<void>((resolve, reject) => {
        const done = (err?: unknown) => err ? reject(err) : resolve()
        ;(hook as unknown as (a: unknown, b: unknown, c: unknown) => unknown).call(instance, request, reply, done)
      })
    } else {
      await hook.call(instance, request, reply)
    }
  } catch (error) {
    return { ok: false, error }
  }
  if (sent(reply)) return { ok: false, status: reply.statusCode }
  return { ok: true }
}

/** Tries strategies in order until one succeeds (DRF's authentication classes). */
export async function runStrategies (strategies: WsxHook[], instance: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<HookOutcome> {
  let last: HookOutcome = { ok: false, status: 401 }
  for (const strategy of strategies) {
    last = await runHook(strategy, instance, request, reply)
    if (last.ok || sent(reply)) return last
  }
  return last
}

/** Runs hooks in sequence until one fails (Fastify's preHandler chain). */
export async function runChain (hooks: WsxHook[], instance: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<HookOutcome> {
  for (const hook of hooks) {
    const outcome = await runHook(hook, instance, request, reply)
    if (!outcome.ok) return outcome
  }
  return { ok: true }
}
