// A minimal event emitter that runs in browsers and Node alike (node:events is off limits
// in client/). A listener that throws must not break the frame loop that called it, so its
// error is rethrown on a fresh task, where the host reports it (console / uncaughtException).

export type Listener = (...args: any[]) => void

/** Named events with `on` / `off` / `emit`. */
export class Emitter {
  readonly #listeners = new Map<string, Set<Listener>>()

  /** Adds a listener; returns a function that removes it. */
  on (event: string, listener: Listener): () => void {
    let set = this.#listeners.get(event)
    if (!set) this.#listeners.set(event, (set = new Set()))
    set.add(listener)
    return () => this.off(event, listener)
  }

  off (event: string, listener: Listener): void {
    const set = this.#listeners.get(event)
    if (!set) return
    set.delete(listener)
    if (set.size === 0) this.#listeners.delete(event)
  }

  /** Calls the event's listeners in order; returns whether there was any. */
  emit (event: string, ...args: unknown[]): boolean {
    const set = this.#listeners.get(event)
    if (!set) return false
    // a copy, so a listener may remove itself or others while we iterate
    for (const listener of [...set]) callSafely(listener, args)
    return true
  }
}

/** Runs a callback; an exception is reported on a fresh task instead of unwinding our caller. */
export function callSafely (fn: Listener, args: unknown[]): void {
  try {
    fn(...args)
  } catch (err) {
    setTimeout(() => { throw err }, 0)
  }
}
