// ioredis clients with options that cannot hang or crash the process (PITFALLS 10,
// "ioredis" paragraph): ioredis' defaults queue commands forever on a frozen Redis and
// crash the process on the first connection error when nobody listens for 'error'.
import { Redis, type RedisOptions } from 'ioredis'

/**
 * - `store`: request/response commands (throttles, locks, presence, publishing). A command
 *   fails fast instead of waiting for a reconnection: no offline queue, one retry, a
 *   command timeout for a frozen server.
 * - `bus`: a pub/sub subscriber. Commands (SUBSCRIBE) must survive an outage, so they
 *   wait in the offline queue with no retry limit and no timeout; ioredis re-subscribes
 *   by itself after a reconnection.
 */
export type RedisPurpose = 'bus' | 'store'

export interface CreateRedisOptions {
  purpose: RedisPurpose
  /** receives every connection error; without it errors are swallowed (never thrown) */
  onError?: (err: Error) => void
  /** shown by `CLIENT LIST`, handy to find (or `CLIENT KILL`) our connections */
  connectionName?: string
}

const STORE_COMMAND_TIMEOUT_MS = 1000
const CONNECT_TIMEOUT_MS = 5000

/** Reconnect forever, backing off from 50 ms to at most 2 s (ioredis' curve, kept explicit). */
function retryStrategy (times: number): number {
  return Math.min(times * 50, 2000)
}

function safeOptions (purpose: RedisPurpose): RedisOptions {
  const common: RedisOptions = { connectTimeout: CONNECT_TIMEOUT_MS, retryStrategy }
  if (purpose === 'store') {
    return { ...common, commandTimeout: STORE_COMMAND_TIMEOUT_MS, maxRetriesPerRequest: 1, enableOfflineQueue: false }
  }
  return { ...common, maxRetriesPerRequest: null, enableOfflineQueue: true, autoResubscribe: true }
}

/**
 * Builds an ioredis client for `purpose` with safe defaults; options given in an object
 * `target` win over the defaults. An existing client is duplicated with the safe options
 * (the caller's client is left untouched, and closing ours never closes theirs).
 * An 'error' listener is always attached, so connection errors never crash the process.
 * @example const store = createRedis('redis://127.0.0.1:6379', { purpose: 'store', onError: (err) => log.warn({ err }) })
 */
export function createRedis (target: string | RedisOptions | Redis, opts: CreateRedisOptions): Redis {
  const defaults: RedisOptions = safeOptions(opts.purpose)
  if (opts.connectionName) defaults.connectionName = opts.connectionName
  let client: Redis
  if (target instanceof Redis) client = target.duplicate(defaults)
  else if (typeof target === 'string') client = new Redis(target, defaults)
  else client = new Redis({ ...defaults, ...target })
  const onError = opts.onError
  client.on('error', (err: Error) => {
    if (!onError) return
    try {
      onError(err)
    } catch {
      // a throwing reporter must not turn a connection error into a crash
    }
  })
  return client
}

/**
 * Closes a client without ever hanging: QUIT raced with `ms`, then a hard disconnect.
 * (QUIT waits forever in the offline queue, or rejects, while Redis is down.)
 */
export async function closeRedis (client: Redis, ms = 1000): Promise<void> {
  if (client.status === 'end') return
  if (client.status === 'wait') { client.disconnect(); return } // lazy and never connected
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>((resolve) => { timer = setTimeout(resolve, ms) })
  const quit = client.quit().then(() => {}, () => {})
  await Promise.race([quit, timeout])
  clearTimeout(timer)
  // re-read after the await: quit() may have ended the connection meanwhile
  if ((client.status as string) !== 'end') await disconnectRedis(client, Math.min(ms, 200))
}

/**
 * Drops the connection now and stops reconnecting. disconnect() only half-closes the
 * socket, and a frozen server never answers the FIN: the socket (and the process) would
 * linger, so after `ms` the socket is destroyed.
 */
export async function disconnectRedis (client: Redis, ms = 200): Promise<void> {
  if (client.status === 'end') return
  let timer: NodeJS.Timeout | undefined
  const ended = new Promise<void>((resolve) => { client.once('end', resolve) })
  const waitEnd = (wait: number) => Promise.race([ended, new Promise<void>((resolve) => { timer = setTimeout(resolve, wait) })])
  client.disconnect()
  await waitEnd(ms)
  clearTimeout(timer)
  if ((client.status as string) === 'end') return
  client.stream?.destroy()
  await waitEnd(50)
  clearTimeout(timer)
}

/**
 * Resolves true once `client` is ready, false after `ms` (never rejects). A `store` client
 * has no offline queue: commands sent before its first connection fail at once, so
 * anything that runs right at startup should wait for it first.
 */
export function waitForRedis (client: Redis, ms = CONNECT_TIMEOUT_MS): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true)
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer)
      client.removeListener('ready', onReady)
      client.removeListener('end', onEnd)
      resolve(ready)
    }
    const onReady = () => done(true)
    const onEnd = () => done(false)
    const timer = setTimeout(done, ms, false)
    timer.unref()
    client.once('ready', onReady)
    client.once('end', onEnd)
  })
}
