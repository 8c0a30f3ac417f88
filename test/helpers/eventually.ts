// One way to wait for something that happens on its own (a frame arrives, a process is up,
// Redis fails over): poll a probe until its value passes, or fail saying what was awaited
// and what was last seen. Polls on the real clock, captured when this module loads, so a
// test that fakes timers (test/helpers/fake-clock.ts) can still wait for real I/O.
import { inspect } from 'node:util'

const realSetTimeout = globalThis.setTimeout
const realNow = Date.now

export interface EventuallyOptions {
  /** What is awaited, for the failure message. */
  what?: string
  /** Give up after this many milliseconds (default 10 s: a slow machine, not a bug, is what a short timeout catches). */
  timeout?: number
  /** Milliseconds between two probes (default 10). */
  interval?: number
}

/**
 * Calls `probe` until `ok(value)` holds (truthiness by default) and resolves with that value.
 * A probe that throws counts as "not yet". After `timeout` ms it rejects with an Error naming
 * `what` and the last value seen (or the last error thrown).
 */
export async function eventually<T> (probe: () => T | Promise<T>, options?: EventuallyOptions): Promise<T>
export async function eventually<T> (probe: () => T | Promise<T>, ok: (value: T) => boolean, options?: EventuallyOptions): Promise<T>
export async function eventually<T> (probe: () => T | Promise<T>, okOrOptions?: ((value: T) => boolean) | EventuallyOptions, maybeOptions: EventuallyOptions = {}): Promise<T> {
  const ok = typeof okOrOptions === 'function' ? okOrOptions : (value: T) => Boolean(value)
  const { what = 'the condition', timeout = 10_000, interval = 10 } = typeof okOrOptions === 'function' ? maybeOptions : (okOrOptions ?? {})
  const deadline = realNow() + timeout
  let last: { value: T } | { error: unknown } | undefined
  for (;;) {
    try {
      const value = await probe()
      if (ok(value)) return value
      last = { value }
    } catch (error) {
      last = { error }
    }
    if (realNow() >= deadline) break
    await new Promise((resolve) => realSetTimeout(resolve, interval))
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what}; last ${describe(last)}`)
}

function describe (last: { value: unknown } | { error: unknown } | undefined): string {
  if (last === undefined) return 'probe never answered'
  const text = 'error' in last
    ? `probe error: ${last.error instanceof Error ? last.error.message : inspect(last.error)}`
    : `seen: ${inspect(last.value, { depth: 3, breakLength: Infinity })}`
  return text.length > 600 ? `${text.slice(0, 600)}…` : text
}
