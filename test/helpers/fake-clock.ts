// A fake clock for tests that wait for a window (a throttle window, a lock's end, a
// handshake timeout) instead of sleeping through it: the test moves time itself, exactly as
// far as the window, and nothing moves it otherwise.
// The server under test keeps running on real sockets, so only what is asked is faked:
// `Date` by default (every window a store or an answer computes from Date.now()), and
// setTimeout/setInterval for a test that must fire a timer armed after the clock was
// installed. setImmediate, process.nextTick, queueMicrotask, hrtime and performance are never
// faked: real I/O and promises run on them. test/helpers/eventually.ts keeps polling on the
// real clock. Uninstalled at teardown (before any app.close() registered earlier).
import { install, type Clock } from '@sinonjs/fake-timers'

export type Faked = 'Date' | 'setTimeout' | 'clearTimeout' | 'setInterval' | 'clearInterval'

interface TapLike { teardown (fn: () => unknown): void }

/** Installs a clock at the real time now; it stays there until the test ticks it. */
export function fakeClock (t: TapLike, toFake: Faked[] = ['Date']): Clock {
  const clock = install({ now: Date.now(), toFake, shouldAdvanceTime: false })
  t.teardown(() => clock.uninstall())
  return clock
}
