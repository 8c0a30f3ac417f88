// Who is in a group, across instances (Phoenix Presence, much simplified): each instance
// writes its own connections and keeps them alive with a heartbeat; the entries of an
// instance whose heartbeat went stale (crashed, partitioned) are ignored and cleaned by
// whoever reads them. Each instance keeps a local mirror of what it wrote, the source of
// truth it re-publishes whenever Redis forgot it (stale heartbeat, failed write).
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { BusLogger } from './bus.js'
import { assertGroupName, assertNamespace } from './group-name.js'
import { errors } from '../errors.js'
import { keyPrefixOf, waitForRedis } from '../redis/client.js'
import { redisKeys } from '../redis/keys.js'

export interface PresenceEntry {
  user: string
  /** how many connections of this user are in the group, all instances together */
  connections: number
}

export interface PresenceStore {
  add (group: string, connId: string, user: string): Promise<void>
  remove (group: string, connId: string): Promise<void>
  /** members of `group`, one entry per user, sorted by user */
  list (group: string): Promise<PresenceEntry[]>
  close (): Promise<void>
}

/** The part of the bus' logger (a pino/Fastify logger) presence uses. */
export type PresenceLogger = Pick<BusLogger, 'warn'>

const MAX_ID_LENGTH = 256
// instance ids are the prefix of hash fields, split at the first '/': they cannot hold one
const INSTANCE_PATTERN = /^[A-Za-z0-9_.:@-]{1,128}$/

function assertEntry (group: string, connId: string, user?: string): void {
  assertGroupName(group)
  if (typeof connId !== 'string' || connId.length === 0 || connId.length > MAX_ID_LENGTH) throw new TypeError('presence: connId must be a non-empty string')
  if (user !== undefined && (typeof user !== 'string' || user.length === 0 || user.length > MAX_ID_LENGTH)) throw new TypeError('presence: user must be a non-empty string')
}

/** Counts connections per user; sorted by code unit so every instance agrees on the order. */
export function summarize (users: Iterable<string>): PresenceEntry[] {
  const counts = new Map<string, number>()
  for (const user of users) counts.set(user, (counts.get(user) ?? 0) + 1)
  return [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([user, connections]) => ({ user, connections }))
}

/** Presence of this instance only: the default without Redis. */
export class MemoryPresence implements PresenceStore {
  private readonly groups = new Map<string, Map<string, string>>()

  async add (group: string, connId: string, user: string): Promise<void> {
    assertEntry(group, connId, user)
    let members = this.groups.get(group)
    if (!members) this.groups.set(group, members = new Map())
    members.set(connId, user)
  }

  async remove (group: string, connId: string): Promise<void> {
    assertEntry(group, connId)
    const members = this.groups.get(group)
    if (!members) return
    members.delete(connId)
    if (members.size === 0) this.groups.delete(group)
  }

  async list (group: string): Promise<PresenceEntry[]> {
    assertGroupName(group)
    return summarize(this.groups.get(group)?.values() ?? [])
  }

  async close (): Promise<void> {
    this.groups.clear()
  }
}

export interface RedisPresenceOptions {
  /** key prefix, shared by the instances of one application; default 'wsx' */
  namespace?: string
  /** unique per process; default a random UUID */
  instanceId?: string
  /** entries of an instance silent for this long are dead; heartbeat every ttl/3. Default 30 s */
  ttlMs?: number
  log?: PresenceLogger
}

// Server time (TIME) everywhere: instances with skewed clocks still agree on staleness.
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// Extend a key's life to at least ttl; never shortens one kept longer by another instance.
const KEEP = `local function keep (key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
`

// KEYS: group hash, instance's group set. ARGV: field, user, group, ttl
const ADD = `${KEEP}
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
keep(KEYS[1], tonumber(ARGV[4]))
keep(KEYS[2], tonumber(ARGV[4]))
`

// KEYS: group hash, heartbeat zset. Returns the users of live instances; drops the others.
const LIST = `${NOW}
local flat = redis.call('HGETALL', KEYS[1])
local alive = {}
local users = {}
for i = 1, #flat, 2 do
  local field = flat[i]
  local instance = string.match(field, '^([^/]+)/')
  local ok = false
  if instance then
    ok = alive[instance]
    if ok == nil then
      local score = redis.call('ZSCORE', KEYS[2], instance)
      ok = score ~= false and tonumber(score) >= now
      alive[instance] = ok
    end
  end
  if ok then users[#users + 1] = flat[i + 1] else redis.call('HDEL', KEYS[1], field) end
end
return users
`

// KEYS: heartbeat zset, instance's group set. ARGV: instance, ttl, group key prefix.
// The zset scores are deadlines; a past deadline means the same as no entry (dead).
// Returns 1 when the instance was still alive, 0 when others may have dropped its entries.
const HEARTBEAT = `${NOW}${KEEP}
local ttl = tonumber(ARGV[2])
local prev = redis.call('ZSCORE', KEYS[1], ARGV[1])
local wasAlive = prev ~= false and tonumber(prev) >= now
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
keep(KEYS[1], ttl)
keep(KEYS[2], ttl)
for _, group in ipairs(redis.call('SMEMBERS', KEYS[2])) do keep(ARGV[3] .. group, ttl) end
if wasAlive then return 1 end
return 0
`

/**
 * Presence in Redis. Use a `store` client from createRedis (command timeout, no offline
 * queue) so no call can hang; the client is not closed by close().
 * add/remove reject when Redis fails; the local mirror is kept anyway and re-published by
 * the next heartbeat, so presence heals once Redis is back.
 */
export class RedisPresence implements PresenceStore {
  readonly instanceId: string
  private readonly redis: Redis
  private readonly ttlMs: number
  private readonly log: PresenceLogger | undefined
  private readonly base: string
  private readonly heartbeatKey: string
  private readonly instanceKey: string
  /** what the heartbeat script prepends to group keys it builds (ioredis' keyPrefix included) */
  private readonly groupKeyPrefix: string
  private readonly local = new Map<string, Map<string, string>>()
  private readonly timer: NodeJS.Timeout
  /** writes of this instance run one after another, so a re-publish never interleaves with them */
  private chain: Promise<unknown>
  private dirty = false
  private closed = false

  constructor (redis: Redis, opts: RedisPresenceOptions = {}) {
    const namespace = opts.namespace ?? 'wsx'
    this.instanceId = opts.instanceId ?? randomUUID()
    this.ttlMs = opts.ttlMs ?? 30_000
    assertNamespace(namespace, 'presence namespace')
    if (!INSTANCE_PATTERN.test(this.instanceId)) throw new errors.WSX_ERR_OPTS_INVALID(`presence instanceId "${this.instanceId}" must match ${INSTANCE_PATTERN}`)
    if (!Number.isInteger(this.ttlMs) || this.ttlMs < 30) throw new errors.WSX_ERR_OPTS_INVALID('presence ttlMs must be an integer >= 30')
    this.redis = redis
    this.log = opts.log
    // one hash tag: every key on the same cluster slot, as the scripts touch several
    this.base = redisKeys(namespace).presenceBase
    this.heartbeatKey = `${this.base}:hb`
    this.instanceKey = `${this.base}:i:${this.instanceId}`
    // ioredis prefixes declared KEYS, not the keys a script builds from ARGV
    this.groupKeyPrefix = `${keyPrefixOf(redis)}${this.base}:g:`
    // the first writes wait for the connection (a store client has no offline queue)
    this.chain = waitForRedis(redis).then(() => this.heartbeat())
    this.timer = setInterval(() => { this.enqueue(() => this.heartbeat()).catch(() => {}) }, Math.max(10, Math.floor(this.ttlMs / 3)))
    this.timer.unref()
  }

  async add (group: string, connId: string, user: string): Promise<void> {
    assertEntry(group, connId, user)
    if (this.closed) throw new errors.WSX_ERR_NOT_READY('presence is closed')
    let members = this.local.get(group)
    if (!members) this.local.set(group, members = new Map())
    members.set(connId, user)
    await this.enqueue(() => this.write(() => this.redis.eval(ADD, 2, this.groupKey(group), this.instanceKey, this.field(connId), user, group, this.ttlMs)))
  }

  async remove (group: string, connId: string): Promise<void> {
    assertEntry(group, connId)
    if (this.closed) return
    const members = this.local.get(group)
    if (!members?.delete(connId)) return
    const empty = members.size === 0
    if (empty) this.local.delete(group)
    await this.enqueue(() => this.write(() => {
      const tx = this.redis.multi().hdel(this.groupKey(group), this.field(connId))
      if (empty) tx.srem(this.instanceKey, group)
      return tx.exec()
    }))
  }

  async list (group: string): Promise<PresenceEntry[]> {
    assertGroupName(group)
    const users = await this.redis.eval(LIST, 2, this.groupKey(group), this.heartbeatKey) as string[]
    return summarize(users)
  }

  /** Stops the heartbeat and removes this instance's entries (best effort, bounded). */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    const groups = [...this.local]
    this.local.clear()
    const cleanup = this.enqueue(async () => {
      const tx = this.redis.multi()
      for (const [group, members] of groups) tx.hdel(this.groupKey(group), ...[...members.keys()].map(id => this.field(id)))
      tx.del(this.instanceKey).zrem(this.heartbeatKey, this.instanceId)
      await tx.exec()
    }).catch((err: unknown) => this.log?.warn({ err }, 'wsx presence: cleanup failed; entries will expire'))
    let timer: NodeJS.Timeout | undefined
    await Promise.race([cleanup, new Promise((resolve) => { timer = setTimeout(resolve, 1000) })])
    clearTimeout(timer)
  }

  private groupKey (group: string): string {
    return `${this.base}:g:${group}`
  }

  private field (connId: string): string {
    return `${this.instanceId}/${connId}`
  }

  private enqueue<T> (op: () => Promise<T>): Promise<T> {
    const next = this.chain.then(op, op)
    this.chain = next.catch(() => {})
    return next
  }

  /** A failed write leaves Redis behind the mirror: the next heartbeat re-publishes. */
  private async write (op: () => Promise<unknown>): Promise<void> {
    try {
      await op()
    } catch (err) {
      this.dirty = true
      throw err
    }
  }

  private async heartbeat (): Promise<void> {
    if (this.closed) return
    try {
      const wasAlive = await this.redis.eval(HEARTBEAT, 2, this.heartbeatKey, this.instanceKey, this.instanceId, this.ttlMs, this.groupKeyPrefix)
      if (wasAlive !== 1 || this.dirty) await this.republish()
    } catch (err) {
      this.dirty = true
      this.log?.warn({ err }, 'wsx presence: heartbeat failed')
    }
  }

  /** Makes Redis match the local mirror: our stale fields out, our live ones in. */
  private async republish (): Promise<void> {
    this.dirty = false
    const prefix = `${this.instanceId}/`
    const known = await this.redis.smembers(this.instanceKey)
    const groups = new Set([...known, ...this.local.keys()])
    const tx = this.redis.multi()
    for (const group of groups) {
      const key = this.groupKey(group)
      const members = this.local.get(group)
      const ours = (await this.redis.hkeys(key)).filter(f => f.startsWith(prefix))
      const stale = ours.filter(f => !members?.has(f.slice(prefix.length)))
      if (stale.length > 0) tx.hdel(key, ...stale)
      if (!members) tx.srem(this.instanceKey, group)
      for (const [connId, user] of members ?? []) tx.eval(ADD, 2, key, this.instanceKey, this.field(connId), user, group, this.ttlMs)
    }
    await tx.exec()
  }
}
