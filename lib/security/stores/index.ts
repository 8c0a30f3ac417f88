// Throttle counters and handshake locks, in process memory or shared through Redis.
export { createLimiter, type ConsumeResult, type Limiter, type LimiterOptions } from './limiter.js'
export { createLockout, type Lockout, type LockoutFailure, type LockoutOptions, type LockoutState } from './lockout.js'
