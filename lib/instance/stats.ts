// In-process counters behind `app.wsx.stats()`. Kept to plain numbers and Maps so the
// hot path pays an increment, not an allocation; exporters (Prometheus) read snapshots.

/** Upper bounds (ms) of the handler latency histogram buckets. */
export const LATENCY_BUCKETS_MS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000] as const

export interface WsxStatsSnapshot {
  connections: { open: number, byRoute: Record<string, number>, total: number }
  messages: { in: number, out: number, byAction: Record<string, Record<string, number>> }
  handlerLatencyMs: { buckets: Array<{ le: number | '+Inf', count: number }>, sum: number, count: number }
  throttled: number
  authFailures: number
  closes: Record<string, number>
  bus: { published: number, received: number, up: boolean }
}

export class Stats {
  open = 0
  total = 0
  readonly openByRoute = new Map<string, number>()
  messagesIn = 0
  messagesOut = 0
  readonly byAction = new Map<string, Map<string, number>>()
  readonly latency = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0)
  latencySum = 0
  latencyCount = 0
  throttled = 0
  authFailures = 0
  readonly closes = new Map<number, number>()
  /** frames handed to the bus by this instance (received ones are counted by the group registry) */
  busPublished = 0

  connectionOpened (route: string): void {
    this.open++
    this.total++
    this.openByRoute.set(route, (this.openByRoute.get(route) ?? 0) + 1)
  }

  connectionClosed (route: string, code: number): void {
    this.open--
    this.openByRoute.set(route, (this.openByRoute.get(route) ?? 1) - 1)
    this.closes.set(code, (this.closes.get(code) ?? 0) + 1)
  }

  /** One answered message: `outcome` is 'ok' or a wire error code. */
  outcome (action: string, outcome: string): void {
    let perAction = this.byAction.get(action)
    if (!perAction) {
      // unknown action names are attacker-chosen: fold them into one series
      if (this.byAction.size >= 1000) return this.outcome('(other)', outcome)
      perAction = new Map()
      this.byAction.set(action, perAction)
    }
    perAction.set(outcome, (perAction.get(outcome) ?? 0) + 1)
  }

  handlerTook (ms: number): void {
    let i = 0
    while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]!) i++
    this.latency[i]!++
    this.latencySum += ms
    this.latencyCount++
  }

  /** The counters, with the bus state the bus and the group registry hold. */
  snapshot (bus: { received: number, up: boolean }): WsxStatsSnapshot {
    let cumulative = 0
    const buckets = this.latency.map((count, i) => {
      cumulative += count
      return { le: i < LATENCY_BUCKETS_MS.length ? LATENCY_BUCKETS_MS[i]! : '+Inf' as const, count: cumulative }
    })
    const byAction: Record<string, Record<string, number>> = {}
    for (const [action, outcomes] of this.byAction) byAction[action] = Object.fromEntries(outcomes)
    return {
      connections: { open: this.open, byRoute: Object.fromEntries(this.openByRoute), total: this.total },
      messages: { in: this.messagesIn, out: this.messagesOut, byAction },
      handlerLatencyMs: { buckets, sum: this.latencySum, count: this.latencyCount },
      throttled: this.throttled,
      authFailures: this.authFailures,
      closes: Object.fromEntries([...this.closes].map(([code, n]) => [String(code), n])),
      bus: { published: this.busPublished, received: bus.received, up: bus.up }
    }
  }
}
