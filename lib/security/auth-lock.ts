// The authentication lock, one rule for the upgrade and the in-band handshake: failed
// authentications are counted per client address; the one that reaches `attempts` locks
// the address for `lockSeconds`. A success never clears the count (a valid credential
// interleaved between guesses must not reset the guessing budget): failures age out
// `lockSeconds` after the latest one. The counts live in the lockout store, so with Redis
// they hold across instances. Kept apart from the store so the store's outage handling
// and this policy can change independently.
import type { Core } from '../instance/core.js'
import type { HandshakeOptions } from '../../types/options.js'

export interface LockPolicy {
  attempts: number
  lockSeconds: number
}

export interface LockInfo {
  locked: boolean
  /** whole seconds until the lock ends, ≥ 1 when locked */
  retryAfter: number
  /** the store could not answer: treated as locked (fail closed) */
  storeError: boolean
}

export interface FailureInfo {
  attemptsLeft: number
  locked: boolean
  retryAfter: number
}

function lockKey (ip: string): string {
  return `auth:${ip}`
}

/** The attempts and lock length that apply to a route: its handshake's, else the plugin's. */
export function lockPolicy (core: Core, handshake: Required<HandshakeOptions> | null): LockPolicy {
  const h = handshake ?? core.config.handshake
  return { attempts: h.attempts, lockSeconds: h.lockSeconds }
}

/** Whether `ip` is locked now. Never throws. */
export async function checkLock (core: Core, ip: string): Promise<LockInfo> {
  const state = await core.lockout.check(lockKey(ip))
  return { locked: state.locked, retryAfter: state.retryAfter, storeError: state.error === true }
}

/** Counts one failed authentication from `ip`. Never throws. */
export async function countFailure (core: Core, ip: string, policy: LockPolicy): Promise<FailureInfo> {
  core.stats.authFailures++
  const result = await core.lockout.fail(lockKey(ip), policy.attempts, policy.lockSeconds)
  return { attemptsLeft: result.attemptsLeft, locked: result.locked, retryAfter: result.retryAfter }
}

/** The extra `socket.handshake` fields for a locked address (docs/protocol.md#the-lock-at-the-upgrade-and-in-sockethandshake). */
export function lockedHandshakeFields (lock: LockInfo): { attempts_left: 0, retry_after: number } {
  return { attempts_left: 0, retry_after: Math.max(1, lock.retryAfter) }
}
