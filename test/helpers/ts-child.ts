// Child processes that run the project's TypeScript (fixtures, the demo) for a test.
//
// Coverage is recorded per process and merged by file, byte offset by byte offset, with one
// source map per file. tap loads tests through its TypeScript loader; a child started with
// `--import tsx` compiles the same file to other JavaScript (esbuild's), so merging the two
// put counts on the wrong code and reported most files as one line. A child therefore runs
// under the loader its test runs under, and is stopped with a signal it can handle, so it
// writes its coverage on the way out (SIGKILL leaves nothing).
import type { ChildProcess } from 'node:child_process'

/** tap's TypeScript loader, as this process was started with it (absent outside tap). */
const tapLoader = process.execArgv.filter((arg) => /[\\/]@tapjs[\\/]typescript[\\/]/.test(arg))

/** Node arguments that run `entry` (a .ts file) with `args`, compiled as this test process compiles. */
export function tsNodeArgs (entry: string, ...args: string[]): string[] {
  const loader = tapLoader.length > 0 ? [...tapLoader, '--enable-source-maps'] : ['--import', 'tsx']
  return [...loader, entry, ...args]
}

/**
 * Environment for a child that must compile with tsx however the test runs (the README's
 * `npm run demo`): its coverage is not recorded, since it could not be merged with the tests'.
 * The variable is the one tap itself sets for a test whose coverage map excludes it.
 */
export const uncoveredEnv = { _TAPJS_PROCESSINFO_COVERAGE_: '0' } as const

/**
 * Ends a child for teardown: SIGTERM, so it can write its coverage, then SIGKILL if it is
 * still there after `graceMs`. Resolves when it has exited.
 */
export async function stopChild (proc: ChildProcess, graceMs = 5000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  proc.kill('SIGTERM')
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}
