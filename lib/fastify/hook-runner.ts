// Runs ordinary Fastify hook functions — `async (request, reply)` or
// `(request, reply, done)` — outside Fastify's own request lifecycle. Whatever a hook does
// (throws something that is not an Error, rejects, calls `done` twice or never, replies
// through `reply.raw`) ends as an outcome, never as an exception or an unhandled rejection.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { WsxHook } from '../../types/route.js'
import { watchReply } from './request-view.js'

export interface HookOutcome {
  ok: boolean
  /** what the hook threw or passed to `done`, when it did */
  error?: unknown
  /** the status the hook replied with, when it replied */
  status?: number
  /** true when the hook neither finished nor failed within the time limit */
  timedOut?: boolean
}

/** The default bound on one hook; a hook that never calls `done` fails after it. */
export const DEFAULT_HOOK_TIMEOUT_MS = 10_000

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

/**
 * An `async` function that also declares `done` would be settled twice; Fastify refuses
 * it when a hook is added, and so do we, at boot.
 */
export function isAsyncWithDone (fn: unknown): boolean {
  return typeof fn === 'function' && fn.length >= 3 && fn.constructor?.name === 'AsyncFunction'
}

/** Whether the hook answered: `reply.send()`, `reply.raw.end()` or a hijack. */
function replied (reply: FastifyReply): boolean {
  return reply.sent
}

function isThenable (value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function'
}

type AnyHook = (this: unknown, request: unknown, reply: unknown, done?: (err?: unknown) => void) => unknown

/**
 * Calls the hook and settles on its first signal: `done(err?)` for callback hooks, the
 * returned promise for async ones (a callback hook that also returns a rejecting promise
 * fails on the rejection rather than leaving it unhandled). Later signals are ignored.
 */
function callHook (hook: WsxHook, instance: FastifyInstance, request: FastifyRequest, reply: FastifyReply, timeoutMs: number): Promise<HookOutcome> {
  return new Promise<HookOutcome>((resolve) => {
    let settled = false
    const settle = (outcome: HookOutcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(outcome)
    }
    const fail = (error: unknown) => settle({ ok: false, error })
    const callback = hook.length >= 3
    const done = (err?: unknown) => {
      // `done(err)` with any truthy value fails, as Fastify's hook runner treats it
      if (err !== undefined && err !== null && err !== false) fail(err)
      else settle({ ok: true })
    }
    const timer = setTimeout(() => settle({ ok: false, timedOut: true, error: new Error(`hook ${hook.name || '(anonymous)'} did not finish within ${timeoutMs} ms`) }), timeoutMs)
    timer.unref()
    // a callback hook may answer with `reply.send()` and never call done, as Fastify allows
    if (callback) watchReply(reply, () => settle({ ok: true }))
    let returned: unknown
    try {
      returned = (hook as unknown as AnyHook).call(instance, request, reply, callback ? done : undefined)
    } catch (err) {
      fail(err)
      return
    }
    if (isThenable(returned)) {
      // both handlers attached: the hook's promise can never become an unhandled rejection
      Promise.resolve(returned).then(() => { if (!callback) settle({ ok: true }) }, fail)
    } else if (!callback || replied(reply)) {
      settle({ ok: true })
    }
  })
}

/** Runs one hook; resolves how it ended. Never throws or rejects. */
export async function runHook (hook: WsxHook, instance: FastifyInstance, request: FastifyRequest, reply: FastifyReply, timeoutMs = DEFAULT_HOOK_TIMEOUT_MS): Promise<HookOutcome> {
  let outcome: HookOutcome
  try {
    outcome = await callHook(hook, instance, request, reply, timeoutMs)
  } catch (error) {
    outcome = { ok: false, error }
  }
  if (replied(reply)) return { ...outcome, ok: false, status: reply.statusCode }
  return outcome
}

/** Runs hooks in sequence until one fails (Fastify's preHandler chain). */
export async function runChain (hooks: WsxHook[], instance: FastifyInstance, request: FastifyRequest, reply: FastifyReply, timeoutMs = DEFAULT_HOOK_TIMEOUT_MS): Promise<HookOutcome> {
  for (const hook of hooks) {
    const outcome = await runHook(hook, instance, request, reply, timeoutMs)
    if (!outcome.ok) return outcome
  }
  return { ok: true }
}

/** True when the failure is a server-side fault (logged), not a credential being refused. */
export function isFault (outcome: HookOutcome): boolean {
  if (outcome.ok || outcome.status !== undefined) return false
  if (outcome.timedOut) return true
  const status = typeof outcome.error === 'object' && outcome.error !== null ? (outcome.error as { statusCode?: unknown }).statusCode : undefined
  return !(typeof status === 'number' && status >= 400 && status < 500)
}
