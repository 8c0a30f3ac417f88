// Redis clients the plugin can rely on, whatever form the app handed over: a URL, ioredis
// options (standalone or Sentinel), or an ioredis client of any major (Redis or Cluster;
// `app.redis` from @fastify/redis is one). Clients are recognised by shape, never with
// `instanceof`: an app's own `npm install ioredis` is another copy (often another major)
// than the plugin's, and an `instanceof` miss used to fall back to localhost:6379.
//
// The plugin never sends a command on the app's client and never closes it: it duplicates
// it (same servers, credentials, TLS, db, Sentinel or Cluster topology) with the fail-fast
// options its guarantees depend on. This module loads no ioredis code itself (only types),
// so an app without `redis` never loads ioredis.
import type { Redis, RedisOptions } from 'ioredis'
import { errors } from '../errors.js'

/**
 * - `store`: request/response commands (throttles, locks, presence, publishing). A command
 *   fails fast instead of waiting for a reconnection: no offline queue, one retry, a
 *   command timeout for a frozen server.
 * - `bus`: a pub/sub subscriber. Commands (SUBSCRIBE) must survive an outage, so they
 *   wait in the offline queue with no retry limit and no timeout; ioredis re-subscribes
 *   by itself after a reconnection.
 */
export type RedisPurpose = 'bus' | 'store'

/** What the plugin needs to recognise an ioredis client (Redis or Cluster, any major). */
export interface RedisClientLike {
  duplicate (...args: never[]): unknown
  readonly status: string
  readonly options: object
}

export interface CreateRedisOptions {
  purpose: RedisPurpose
  /** receives every connection error; without it errors are swallowed (never thrown) */
  onError?: (err: Error) => void
  /** shown by `CLIENT LIST`, handy to find (or `CLIENT KILL`) our connections */
  connectionName?: string
}

/** The ioredis class a URL or an options object needs (the caller's import). */
export interface IoredisModule {
  Redis: new (...args: any[]) => Redis
}

export const STORE_COMMAND_TIMEOUT_MS = 1000
export const CONNECT_TIMEOUT_MS = 5000

/** Reconnect forever, backing off from 50 ms to at most 2 s (ioredis' curve, kept explicit). */
function retryStrategy (times: number): number {
  return Math.min(times * 50, 2000)
}

/**
 * The options every connection the plugin creates gets, whatever the app configured:
 * they win over the app's options (see `reportOverrides`). `undefined` values are meant:
 * they replace a value copied from the app's client.
 */
export function failFastOptions (purpose: RedisPurpose): RedisOptions {
  const common: RedisOptions = {
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy,
    // a Sentinel outage must not end our reconnection attempts either
    sentinelRetryStrategy: retryStrategy,
    // a lazy client without an offline queue would refuse every command
    lazyConnect: false
  }
  if (purpose === 'store') {
    return { ...common, commandTimeout: STORE_COMMAND_TIMEOUT_MS, maxRetriesPerRequest: 1, enableOfflineQueue: false, autoResubscribe: false }
  }
  return { ...common, commandTimeout: undefined, maxRetriesPerRequest: null, enableOfflineQueue: true, autoResubscribe: true }
}

/** The Cluster equivalent: cluster-level options plus the options of each node connection. */
function clusterFailFast (purpose: RedisPurpose, base: Record<string, unknown>, connectionName?: string): Record<string, unknown> {
  const node = failFastOptions(purpose)
  const redisOptions = {
    ...(base.redisOptions as object | undefined),
    connectTimeout: node.connectTimeout,
    commandTimeout: node.commandTimeout,
    maxRetriesPerRequest: node.maxRetriesPerRequest,
    autoResubscribe: node.autoResubscribe,
    ...(connectionName && { connectionName })
  }
  return {
    enableOfflineQueue: node.enableOfflineQueue,
    clusterRetryStrategy: retryStrategy,
    // replicas lag: a throttle or presence read must see the last write
    scaleReads: 'master',
    lazyConnect: false,
    redisOptions
  }
}

/** The settings the plugin replaces on its own connections, and why (for the boot warning). */
const GUARDED: Record<string, string> = {
  enableOfflineQueue: 'commands must fail fast while Redis is down (throttles and locks fail closed at once)',
  maxRetriesPerRequest: 'commands must fail fast while Redis is down',
  commandTimeout: 'a frozen Redis must not hold a throttle or a lock check',
  retryStrategy: 'the plugin must reconnect until Redis is back',
  sentinelRetryStrategy: 'the plugin must reconnect until Sentinel answers again',
  clusterRetryStrategy: 'the plugin must reconnect until the cluster is back',
  autoResubscribe: 'the bus subscriber must re-subscribe after a reconnection',
  lazyConnect: 'the plugin connects at boot',
  scaleReads: 'reads must see the last write (replicas lag)'
}

/** Duck type: an ioredis client of any major (the bits every version and Cluster share). */
export function isRedisClient (value: unknown): value is RedisClientLike {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return typeof v.duplicate === 'function' && typeof v.defineCommand === 'function' &&
    typeof v.status === 'string' && typeof v.options === 'object' && v.options !== null
}

export function isClusterClient (value: RedisClientLike): boolean {
  return (value as { isCluster?: unknown }).isCluster === true
}

/** What `redis` was given as, for logs and the boot checks. */
export type RedisForm = 'url' | 'options' | 'sentinel' | 'client' | 'cluster'

export interface RedisInputCheck {
  form: RedisForm
  /** one line per setting of the app's that the plugin's connections replace */
  warnings: string[]
}

/**
 * Checks the `redis` option at boot. Throws WSX_ERR_OPTS_INVALID for a form the plugin
 * cannot use (e.g. a node-redis client, options naming no server) and
 * WSX_ERR_REDIS_UNSUITABLE for settings that would break a guarantee and cannot be
 * replaced without connecting somewhere the app did not name (a Sentinel replica).
 */
export function checkRedisInput (input: unknown): RedisInputCheck {
  if (typeof input === 'string') {
    if (!/^rediss?:\/\/./.test(input) && !input.startsWith('/')) {
      throw new errors.WSX_ERR_OPTS_INVALID('redis must be a redis:// or rediss:// URL, a unix socket path, ioredis options or an ioredis client')
    }
    return { form: 'url', warnings: [] }
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new errors.WSX_ERR_OPTS_INVALID('redis must be a redis:// URL, ioredis options or an ioredis client')
  }
  if (isRedisClient(input)) {
    const options = input.options as Record<string, unknown>
    const cluster = isClusterClient(input)
    if (!cluster) checkNodeOptions(options)
    const defaults = (input.constructor as { defaultOptions?: Record<string, unknown> }).defaultOptions ?? {}
    return { form: cluster ? 'cluster' : 'client', warnings: reportOverrides(options, defaults) }
  }
  if (typeof (input as { duplicate?: unknown }).duplicate === 'function' || typeof (input as { connect?: unknown }).connect === 'function') {
    throw new errors.WSX_ERR_OPTS_INVALID('redis is a client the plugin does not support (only ioredis clients are, e.g. app.redis from @fastify/redis); pass an ioredis client, a URL or ioredis options')
  }
  const options = input as Record<string, unknown>
  const sentinel = Array.isArray(options.sentinels)
  if (sentinel) {
    if ((options.sentinels as unknown[]).length === 0) throw new errors.WSX_ERR_OPTS_INVALID('redis.sentinels is empty')
    if (typeof options.name !== 'string' || options.name === '') throw new errors.WSX_ERR_OPTS_INVALID('redis.sentinels needs redis.name, the master group name Sentinel monitors')
  } else if (options.host === undefined && options.port === undefined && options.path === undefined) {
    // ioredis would default to localhost:6379: a server the app never named
    throw new errors.WSX_ERR_OPTS_INVALID('redis options name no server: set host/port, path, or sentinels + name')
  }
  checkNodeOptions(options)
  return { form: sentinel ? 'sentinel' : 'options', warnings: reportOverrides(options, {}) }
}

function checkNodeOptions (options: Record<string, unknown>): void {
  if (options.role === 'slave') {
    throw new errors.WSX_ERR_REDIS_UNSUITABLE('role "slave" connects to a Sentinel replica, which refuses the writes throttles, locks and presence need; use role "master" (the default)')
  }
  if (options.monitor === true) throw new errors.WSX_ERR_REDIS_UNSUITABLE('a client in MONITOR mode cannot run commands')
}

// ioredis' defaults (the same in 5 and 6) for the guarded settings that are not functions;
// a client's own class defaults, when it exposes them, also cover the functions.
const IOREDIS_DEFAULTS: Record<string, unknown> = {
  enableOfflineQueue: true, maxRetriesPerRequest: 20, autoResubscribe: true, lazyConnect: false, scaleReads: 'master'
}

/** Names each guarded setting the app set to something else than ioredis' default. */
function reportOverrides (options: Record<string, unknown>, classDefaults: Record<string, unknown>): string[] {
  const defaults = { ...IOREDIS_DEFAULTS, ...classDefaults }
  const out: string[] = []
  for (const [name, why] of Object.entries(GUARDED)) {
    if (!Object.hasOwn(options, name) || options[name] === undefined) continue
    if (Object.hasOwn(defaults, name) ? defaults[name] === options[name] : typeof options[name] === 'function' && Object.keys(classDefaults).length === 0) continue
    out.push(`redis setting ${name} is replaced on the plugin's own connections: ${why}`)
  }
  return out
}

/**
 * A new connection for `purpose` to where `input` points. URL and options need the
 * plugin's ioredis (`io`); a client is duplicated with its own library. The app's client
 * is left untouched, and closing ours never closes theirs. An 'error' listener is always
 * attached, so connection errors never crash the process.
 */
export function openRedisConnection (input: string | object, opts: CreateRedisOptions, io?: IoredisModule): Redis {
  const overrides: RedisOptions = failFastOptions(opts.purpose)
  if (opts.connectionName) overrides.connectionName = opts.connectionName
  let client: Redis
  if (isRedisClient(input)) {
    const source = input as unknown as { duplicate (...args: unknown[]): Redis }
    client = isClusterClient(input)
      ? source.duplicate([], clusterFailFast(opts.purpose, input.options as Record<string, unknown>, opts.connectionName))
      : source.duplicate(overrides)
  } else {
    if (!io) throw new Error('fastify-wsx: ioredis is not loaded')
    client = typeof input === 'string' ? new io.Redis(input, overrides) : new io.Redis({ ...input, ...overrides })
  }
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

/** The `keyPrefix` ioredis adds to keys of our commands (scripts that build keys need it). */
export function keyPrefixOf (client: Redis): string {
  const options = client.options as { keyPrefix?: unknown, redisOptions?: { keyPrefix?: unknown } } | undefined
  const prefix = options?.keyPrefix ?? options?.redisOptions?.keyPrefix
  return typeof prefix === 'string' ? prefix : ''
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
