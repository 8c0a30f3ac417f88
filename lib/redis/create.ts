// The plugin's own ioredis: used for a `redis` URL or options. Only loaded (dynamically)
// when the app configures `redis`; the helpers that work on any client live in
// lib/redis/client.ts, which loads no ioredis code.
import { Redis } from 'ioredis'
import { openRedisConnection, type CreateRedisOptions } from './client.js'

export { closeRedis, disconnectRedis, waitForRedis, failFastOptions, isRedisClient, type CreateRedisOptions, type RedisPurpose, type RedisClientLike } from './client.js'

/**
 * Builds an ioredis client for `purpose` with the fail-fast options (see lib/redis/client.ts);
 * a client `target` (any ioredis major, Redis or Cluster) is duplicated with them.
 * @example const store = createRedis('redis://127.0.0.1:6379', { purpose: 'store', onError: (err) => log.warn({ err }) })
 */
export function createRedis (target: string | object, opts: CreateRedisOptions): Redis {
  return openRedisConnection(target, opts, { Redis })
}
