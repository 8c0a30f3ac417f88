/** How long to wait between reconnect attempts. */
export interface BackoffOptions {
  /** Delay before the first attempt, before jitter. */
  minDelayMs: number
  /** Cap of the exponential growth, before jitter. */
  maxDelayMs: number
  /** Fraction (0–1) of the delay that may be taken off at random. */
  jitter: number
}

/**
 * The delay before reconnect attempt `attempt` (1-based): `minDelayMs` doubled per attempt,
 * capped at `maxDelayMs`, then up to `jitter` of it removed at random. The jitter matters
 * when a server restarts: every client it dropped (1001) would otherwise come back at the
 * same instant and overload it again (1013).
 */
export function backoffDelay (attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const exponential = Math.min(opts.maxDelayMs, opts.minDelayMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(exponential * (1 - opts.jitter * random()))
}
