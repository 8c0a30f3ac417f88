// Fixed-window message limiter over @fastify/rate-limit's stores. Not createRateLimit():
// its LocalStore path miscounts same-tick bursts and its Redis keys ignore the route, so two
// limiters would share a counter. Every failure of the store answers "not
// allowed": a throttle that passes silently while Redis is down is no throttle.
import type { Redis } from 'ioredis'
import { redisKeys } from '../../redis/keys.js'
import { LocalStore, RedisStore, type RateLimitEntry, type RateLimitStore } from './rate-limit-stores.js'

/** The outcome of one `consume`. */
export interface ConsumeResult {
  /** false when over the limit, or when the store failed (then `error` is true). */
  allowed: boolean
  /** Hits counted in this window, including this one; 0 when the store failed. */
  current: number
  /** When not allowed: ms until the window ends (or a fixed back-off after a store error); else 0. */
  retryAfterMs: number
  /** Set when the store errored or did not answer in time: the answer is a fail-closed refusal. */
  error?: boolean
}

export interface LimiterOptions {
  /** Shared store; without it counters live in this process only. Not closed by the limiter. */
  redis?: Redis
  /** Prefix of every Redis key, so apps sharing a Redis don't share counters. */
  namespace: string
  /** Keys kept by the in-process store (LRU). @default 10000 */
  cacheSize?: number
  /** Bound on one store call, on top of the client's own `commandTimeout`. @default 1000 */
  timeoutMs?: number
  /** Back-off answered when the store fails. @default 1000 */
  errorRetryMs?: number
  /** Told about store failures (to log them); the caller still gets a refusal. */
  onError?: (err: Error) => void
}

export interface Limiter {
  /**
   * Counts one hit on `key` (which already names the bucket, e.g. `user:alice:chat.send`)
   * against `max` hits per `windowMs`. Never throws, never hangs past `timeoutMs`.
   */
  consume (key: string, max: number, windowMs: number): Promise<ConsumeResult>
  /**
   * The in-process store answers synchronously: `consumeNow` (present only without Redis)
   * spares the hot path a promise and a timer per message. Same answers as `consume`.
   */
  consumeNow?: (key: string, max: number, windowMs: number) => ConsumeResult
  /** Stops counting: later calls answer a fail-closed refusal. Does not close `redis`. */
  close (): Promise<void>
}

/**
 * Resolves with `work`'s value, or with `fallback(err)` when it rejects or has not settled
 * after `ms`. Never rejects; an outcome arriving after the deadline is dropped.
 */
export function settleWithin<T> (work: () => Promise<T>, ms: number, fallback: (err: Error) => T): Promise<T> {
  return new Promise<T>((resolve) => {
    let settled = false
    const finish = (value: () => T) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(value())
    }
    // kept referenced: it is short, cleared on settle, and must fire even if nothing else is pending
    const timer = setTimeout(() => finish(() => fallback(new Error(`store did not answer within ${ms} ms`))), ms)
    let pending: Promise<T>
    try {
      pending = work()
    } catch (err) {
      finish(() => fallback(toError(err)))
      return
    }
    pending.then((value) => finish(() => value), (err: unknown) => finish(() => fallback(toError(err))))
  })
}

export function toError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/** Builds a limiter on Redis when given one, else in process memory. */
export function createLimiter (opts: LimiterOptions): Limiter {
  const timeoutMs = opts.timeoutMs ?? 1000
  const errorRetryMs = opts.errorRetryMs ?? 1000
  const store: RateLimitStore = opts.redis
    ? new RedisStore(false, false, opts.redis, redisKeys(opts.namespace).rateLimitPrefix)
    : new LocalStore(false, false, opts.cacheSize ?? 10_000)
  let closed = false

  const refuse = (err: Error): ConsumeResult => {
    report(opts.onError, err)
    return { allowed: false, current: 0, retryAfterMs: errorRetryMs, error: true }
  }

  // The store keeps its own window length per key (LocalStore) or the first caller's TTL
  // (Redis): two limits on one key must not share a counter, so the limit is in the key.
  const increment = (key: string, max: number, windowMs: number) => new Promise<RateLimitEntry>((resolve, reject) => {
    store.incr(`${max}/${windowMs}:${key}`, (err, entry) => {
      // copy now: LocalStore hands out its live entry, which the next hit mutates
      if (err || !entry) reject(err ?? new Error('store answered nothing'))
      else resolve({ current: Number(entry.current), ttl: Number(entry.ttl) })
    }, windowMs, max)
  })

  const verdict = (current: number, ttl: number, max: number, window: number): ConsumeResult => {
    if (current <= max) return { allowed: true, current, retryAfterMs: 0 }
    // ttl < 1 only if something else wrote the key without an expiry: answer a full window
    return { allowed: false, current, retryAfterMs: ttl >= 1 ? Math.min(ttl, window) : window }
  }

  // LocalStore calls back before incr() returns; anything else goes through consume()
  const consumeNow = (key: string, max: number, windowMs: number): ConsumeResult => {
    if (closed) return refuse(new Error('limiter is closed'))
    if (!Number.isInteger(max) || max < 0 || !Number.isFinite(windowMs) || windowMs <= 0) {
      return refuse(new Error(`invalid limit ${max} per ${windowMs} ms`))
    }
    const window = Math.ceil(windowMs)
    let result: ConsumeResult | null = null
    try {
      store.incr(`${max}/${window}:${key}`, (err, entry) => {
        result = err || !entry ? refuse(err ?? new Error('store answered nothing')) : verdict(Number(entry.current), Number(entry.ttl), max, window)
      }, window, max)
    } catch (err) {
      return refuse(toError(err))
    }
    return result ?? refuse(new Error('store did not answer synchronously'))
  }

  return {
    ...(!opts.redis && { consumeNow }),
    consume (key, max, windowMs) {
      if (!opts.redis) return Promise.resolve(consumeNow(key, max, windowMs))
      if (closed) return Promise.resolve(refuse(new Error('limiter is closed')))
      if (!Number.isInteger(max) || max < 0 || !Number.isFinite(windowMs) || windowMs <= 0) {
        return Promise.resolve(refuse(new Error(`invalid limit ${max} per ${windowMs} ms`)))
      }
      const window = Math.ceil(windowMs)
      return settleWithin(async () => {
        const { current, ttl } = await increment(key, max, window)
        return verdict(current, ttl, max, window)
      }, timeoutMs, refuse)
    },
    async close () {
      closed = true
    }
  }
}

/** Calls a reporting hook without letting it break the fail-closed answer. */
export function report (onError: ((err: Error) => void) | undefined, err: Error): void {
  try {
    onError?.(err)
  } catch {
    // a broken logger must not turn a refusal into a throw
  }
}
