// Small statistics helpers for the bench (medians of repetitions, latency percentiles).

/** Median of a non-empty list (mean of the middle two for an even count); NaN when empty. */
export function median (values: readonly number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Nearest-rank percentile (q in 0..100) of an already sorted array; NaN when empty. */
export function percentileSorted (sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((q / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

/** A latency summary in milliseconds. */
export interface LatencySummary {
  count: number
  p50: number
  p99: number
  max: number
}

/** Summarizes latency samples (ms). */
export function summarize (samples: Float64Array | number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort()
  return {
    count: sorted.length,
    p50: percentileSorted(sorted, 50),
    p99: percentileSorted(sorted, 99),
    max: sorted.length === 0 ? NaN : sorted[sorted.length - 1]!
  }
}
