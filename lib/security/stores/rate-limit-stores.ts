// Typed access to @fastify/rate-limit's fixed-window stores (durations are parsed once,
// by lib/boot/duration.ts, with the same @lukeed/ms). The package ships no types for `store/*.js` and has no `exports`
// map, so the deep require works; keep @fastify/rate-limit on ^11.2.
import { createRequire } from 'node:module'
import type { Redis } from 'ioredis'

/** What a store reports for one key after `incr`: hits in this window, ms left in it. */
export interface RateLimitEntry {
  current: number
  ttl: number
}

export type RateLimitCallback = (err: Error | null, entry: RateLimitEntry | null) => void

/** The part of @fastify/rate-limit's store contract we use. */
export interface RateLimitStore {
  /**
   * Counts one hit on `key` and calls back with the window's state. LocalStore calls back
   * synchronously with its *live* LRU entry: copy the fields inside the callback.
   */
  incr (key: string, cb: RateLimitCallback, timeWindow: number, max: number): void
}

export interface LocalStoreConstructor {
  new (continueExceeding: boolean, exponentialBackoff: boolean, cache?: number): RateLimitStore
}

export interface RedisStoreConstructor {
  /** `prefix` is prepended to every key; the Lua INCR + PEXPIRE is registered on `redis`. */
  new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, prefix?: string): RateLimitStore
}

const require = createRequire(import.meta.url)

/** @fastify/rate-limit's in-process store: an LRU of fixed windows. */
export const LocalStore = require('@fastify/rate-limit/store/LocalStore.js') as LocalStoreConstructor

/** @fastify/rate-limit's Redis store: an atomic Lua INCR + PEXPIRE per hit. */
export const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as RedisStoreConstructor
