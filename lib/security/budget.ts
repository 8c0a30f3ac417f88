// A connection's message budget and its `throttled` bookkeeping, owned by one object so
// no other module writes the counters. The budget is in memory (it belongs to one socket);
// per-action throttles go through the shared limiter instead (throttle.ts).

// A client's timer may fire a hair early: a message this close to the end of the advised
// wait still counts as having waited.
const RETRY_ADVICE_SLACK_MS = 50

export class MessageBudget {
  private windowEnd = 0
  private count = 0
  private throttledInARow = 0
  /** until when the last `throttled` answer asked this client to wait (epoch ms) */
  private advisedUntil = 0

  /** Counts one message against `limit` per window; false when over it. */
  spend (limit: { max: number, windowMs: number } | null): boolean {
    if (limit === null) return true
    const now = Date.now()
    if (now >= this.windowEnd) {
      this.windowEnd = now + limit.windowMs
      this.count = 0
    }
    return ++this.count <= limit.max
  }

  /** How long until the current window ends, for the `retry_after` of an over-budget frame. */
  msUntilWindowEnds (): number {
    return this.windowEnd - Date.now()
  }

  /** A message got through: any run of refusals is over. */
  passed (): void {
    this.throttledInARow = 0
  }

  /**
   * Records a `throttled` answer advising a wait of `retryAfter` seconds. Only a message
   * that arrived while an earlier advice was still running counts toward the run: a client
   * that waits as told is never closed, however long the refusals last. True when the run
   * reached `maxInARow` (the connection is to be closed 4429).
   */
  refused (arrivedAt: number, retryAfter: number, maxInARow: number): boolean {
    const ignoredAdvice = arrivedAt < this.advisedUntil - RETRY_ADVICE_SLACK_MS
    this.advisedUntil = Math.max(this.advisedUntil, Date.now() + retryAfter * 1000)
    if (!ignoredAdvice) {
      this.throttledInARow = 0
      return false
    }
    return ++this.throttledInARow >= maxInARow
  }
}
