// Credential expiry for every connection on one timer: connections wait in buckets keyed
// by their `exp` second, and a single interval visits each second once. A setTimeout per
// socket would cost a timer object and a closure for each idle connection.

export interface Expirable {
  /** called once its second has come */
  expire (): void
}

const TICK_MS = 250

export class ExpiryWheel {
  private readonly buckets = new Map<number, Set<Expirable>>()
  private timer: NodeJS.Timeout | null = null
  private next = 0

  /** Calls `item.expire()` once the clock reaches `expSeconds` (JWT `exp`). */
  add (item: Expirable, expSeconds: number): void {
    const second = Math.ceil(expSeconds)
    if (second * 1000 <= Date.now()) {
      queueMicrotask(() => item.expire())
      return
    }
    let bucket = this.buckets.get(second)
    if (!bucket) this.buckets.set(second, bucket = new Set())
    bucket.add(item)
    if (this.timer === null) this.start()
  }

  remove (item: Expirable, expSeconds: number): void {
    const second = Math.ceil(expSeconds)
    const bucket = this.buckets.get(second)
    if (!bucket) return
    bucket.delete(item)
    if (bucket.size === 0) this.buckets.delete(second)
    if (this.buckets.size === 0) this.stop()
  }

  stop (): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  private start (): void {
    this.next = Math.floor(Date.now() / 1000)
    this.timer = setInterval(() => this.tick(), TICK_MS)
    this.timer.unref()
  }

  private tick (): void {
    const now = Math.floor(Date.now() / 1000)
    // visit each second once, even when a tick came late
    for (; this.next <= now; this.next++) {
      const bucket = this.buckets.get(this.next)
      if (!bucket) continue
      this.buckets.delete(this.next)
      for (const item of bucket) item.expire()
    }
    if (this.buckets.size === 0) this.stop()
  }
}
