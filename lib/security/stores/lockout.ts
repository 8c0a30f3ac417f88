// The handshake lock (docs/protocol.md#the-lock-at-the-upgrade-and-in-sockethandshake): failed `socket.authorize` attempts are counted per
// client address; the one that reaches `attempts` locks the address for `lockSeconds`,
// across reconnects and, with Redis, across instances. A store that errors or hangs
// answers "locked": an outage must not turn into unlimited token guessing.
import type { Redis } from 'ioredis'
import { report, settleWithin } from './limiter.js'
import { redisKeys } from '../../redis/keys.js'

/** The outcome of one failed attempt. */
export interface LockoutFailure {
  /** Attempts still allowed before the lock; 0 once locked. */
  attemptsLeft: number
  locked: boolean
  /** Whole seconds until the lock ends (≥ 1 when locked), else 0. */
  retryAfter: number
  /** Set when the store failed: the answer is a fail-closed lock. */
  error?: boolean
}

/** Whether a key is locked now. */
export interface LockoutState {
  locked: boolean
  /** Whole seconds until the lock ends (≥ 1 when locked), else 0. */
  retryAfter: number
  /** Set when the store failed: the answer is a fail-closed lock. */
  error?: boolean
}

export interface LockoutOptions {
  /** Shared store; without it locks live in this process only. Not closed by the lockout. */
  redis?: Redis
  /** Prefix of every Redis key, so apps sharing a Redis don't share locks. */
  namespace: string
  /** Bound on one store call, on top of the client's own `commandTimeout`. @default 1000 */
  timeoutMs?: number
  /** `retryAfter` answered when the store fails. @default 5 */
  errorRetrySeconds?: number
  /** Keys kept by the in-process store before the oldest are dropped. @default 100000 */
  maxEntries?: number
  /** Told about store failures (to log them); the caller still gets a lock. */
  onError?: (err: Error) => void
}

export interface Lockout {
  /**
   * Counts a failed attempt on `key`. The failure count expires `lockSeconds` after the
   * latest failure; the failure that reaches `attempts` locks the key for `lockSeconds`.
   * While locked, a failure changes nothing and answers the lock. Never throws or hangs.
   */
  fail (key: string, attempts: number, lockSeconds: number): Promise<LockoutFailure>
  /** Whether `key` is locked. Never throws or hangs. */
  check (key: string): Promise<LockoutState>
  /** Forgets failures and any lock on `key` (after a successful authorize). Never throws. */
  reset (key: string): Promise<void>
  /** Drops in-process state; later calls answer fail-closed. Does not close `redis`. */
  close (): Promise<void>
}

/** The store's answer before the common rounding: attempts left and ms of lock left. */
interface RawFailure { attemptsLeft: number, lockMs: number }

interface LockoutBackend {
  fail (key: string, attempts: number, lockMs: number): Promise<RawFailure>
  lockMs (key: string): Promise<number>
  reset (key: string): Promise<void>
  close (): void
}

/** Builds a lockout on Redis when given one, else in process memory. */
export function createLockout (opts: LockoutOptions): Lockout {
  const timeoutMs = opts.timeoutMs ?? 1000
  const errorRetrySeconds = opts.errorRetrySeconds ?? 5
  const backend = opts.redis ? redisBackend(opts.redis, opts.namespace) : memoryBackend(opts.maxEntries ?? 100_000)
  let closed = false

  const failed = (err: Error) => report(opts.onError, err)
  const lockedOnError = (err: Error): LockoutState => {
    failed(err)
    return { locked: true, retryAfter: errorRetrySeconds, error: true }
  }
  const guard = <T>(work: () => Promise<T>, fallback: (err: Error) => T): Promise<T> => {
    if (closed) return Promise.resolve(fallback(new Error('lockout is closed')))
    return settleWithin(work, timeoutMs, fallback)
  }

  return {
    fail (key, attempts, lockSeconds) {
      const onError = (err: Error): LockoutFailure => ({ attemptsLeft: 0, ...lockedOnError(err) })
      if (!Number.isInteger(attempts) || attempts < 1 || !Number.isFinite(lockSeconds) || lockSeconds <= 0) {
        return Promise.resolve(onError(new Error(`invalid lockout: ${attempts} attempts, ${lockSeconds} s`)))
      }
      const lockMs = Math.ceil(lockSeconds * 1000)
      return guard(async () => {
        const raw = await backend.fail(key, attempts, lockMs)
        return { attemptsLeft: raw.attemptsLeft, locked: raw.lockMs > 0, retryAfter: toSeconds(raw.lockMs) }
      }, onError)
    },
    check (key) {
      return guard(async () => {
        const ms = await backend.lockMs(key)
        return { locked: ms > 0, retryAfter: toSeconds(ms) }
      }, lockedOnError)
    },
    reset (key) {
      return guard(() => backend.reset(key), failed)
    },
    async close () {
      closed = true
      backend.close()
    }
  }
}

/** Ms left to whole seconds as `retry_after` wants them: rounded up, ≥ 1 while locked. */
function toSeconds (ms: number): number {
  return ms > 0 ? Math.max(1, Math.ceil(ms / 1000)) : 0
}

interface MemoryEntry { failures: number, locked: boolean, expiresAt: number }

/** Process-local locks: a Map in last-touched order, expired lazily, capped at `maxEntries`. */
function memoryBackend (maxEntries: number): LockoutBackend {
  const entries = new Map<string, MemoryEntry>()

  const live = (key: string, now: number): MemoryEntry | undefined => {
    const entry = entries.get(key)
    if (entry && entry.expiresAt <= now) {
      entries.delete(key)
      return undefined
    }
    return entry
  }

  // Bounded so a flood of addresses cannot grow memory without end; expired entries go
  // first, then the least recently failed.
  const store = (key: string, entry: MemoryEntry, now: number) => {
    entries.delete(key)
    if (entries.size >= maxEntries) {
      for (const [k, e] of entries) if (e.expiresAt <= now) entries.delete(k)
      for (const k of entries.keys()) {
        if (entries.size < maxEntries) break
        entries.delete(k)
      }
    }
    entries.set(key, entry)
  }

  return {
    async fail (key, attempts, lockMs) {
      const now = Date.now()
      const entry = live(key, now)
      if (entry?.locked) return { attemptsLeft: 0, lockMs: entry.expiresAt - now }
      const failures = (entry?.failures ?? 0) + 1
      const locked = failures >= attempts
      store(key, { failures, locked, expiresAt: now + lockMs }, now)
      return locked ? { attemptsLeft: 0, lockMs } : { attemptsLeft: attempts - failures, lockMs: 0 }
    },
    async lockMs (key) {
      const now = Date.now()
      const entry = live(key, now)
      return entry?.locked ? entry.expiresAt - now : 0
    },
    async reset (key) {
      entries.delete(key)
    },
    close () {
      entries.clear()
    }
  }
}

// One hash per key: `failures` counts, `locked` marks the lock; the key's TTL is both the
// sliding failure window and the lock's end. Scripts keep each step atomic across instances.
const failScript = `
local key = KEYS[1]
local attempts = tonumber(ARGV[1])
local ms = tonumber(ARGV[2])
if redis.call('HGET', key, 'locked') == '1' then
  local ttl = redis.call('PTTL', key)
  if ttl > 0 then return {0, ttl} end
  -- a lock without expiry would never end
  redis.call('PEXPIRE', key, ms)
  return {0, ms}
end
local failures = redis.call('HINCRBY', key, 'failures', 1)
redis.call('PEXPIRE', key, ms)
if failures >= attempts then
  redis.call('HSET', key, 'locked', '1')
  return {0, ms}
end
return {attempts - failures, 0}
`

const checkScript = `
if redis.call('HGET', KEYS[1], 'locked') ~= '1' then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then return ttl end
return 1000
`

interface LockoutCommands {
  wsxLockoutFailV1 (key: string, attempts: number, lockMs: number): Promise<[number, number]>
  wsxLockoutCheckV1 (key: string): Promise<number>
}

/** Locks shared by every instance on one Redis, under `<namespace>:lock:`. */
function redisBackend (redis: Redis, namespace: string): LockoutBackend {
  // defineCommand runs EVALSHA and falls back to EVAL after a restart emptied the script cache
  if (!('wsxLockoutFailV1' in redis)) redis.defineCommand('wsxLockoutFailV1', { numberOfKeys: 1, lua: failScript })
  if (!('wsxLockoutCheckV1' in redis)) redis.defineCommand('wsxLockoutCheckV1', { numberOfKeys: 1, lua: checkScript })
  const client = redis as Redis & LockoutCommands
  const keyOf = redisKeys(namespace).lock

  return {
    async fail (key, attempts, lockMs) {
      const [attemptsLeft, ms] = await client.wsxLockoutFailV1(keyOf(key), attempts, lockMs)
      return { attemptsLeft: Number(attemptsLeft), lockMs: Number(ms) }
    },
    async lockMs (key) {
      return Number(await client.wsxLockoutCheckV1(keyOf(key)))
    },
    async reset (key) {
      await client.del(keyOf(key))
    },
    close () {}
  }
}
