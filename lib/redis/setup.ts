// The Redis side of the plugin, opened at boot when `redis` is set: the store connection
// (throttles, locks, presence, history) and the bus emitter. This module and everything
// Redis-only it imports (ioredis, mqemitter-redis) are loaded dynamically, so an app
// without `redis` never loads them.
import type { Redis } from 'ioredis'
import type { WsxEmitter } from '../../types/options.js'
import { createRedisEmitter } from '../broadcast/redis-emitter.js'
import { createRedis } from './create.js'

export interface RedisSetup {
  store: Redis
  /** set unless the app gave its own `emitter` */
  emitter?: WsxEmitter
}

export interface OpenRedisOptions {
  namespace: string
  /** build the bus emitter too */
  withEmitter: boolean
  onStoreError: (err: Error) => void
}

/** Opens the plugin's connections to where `input` points (never anywhere else). */
export function openRedis (input: string | object, opts: OpenRedisOptions): RedisSetup {
  const store = createRedis(input, { purpose: 'store', onError: opts.onStoreError, connectionName: `${opts.namespace}:store` })
  const setup: RedisSetup = { store }
  if (opts.withEmitter) setup.emitter = createRedisEmitter(input, opts.namespace)
  return setup
}
