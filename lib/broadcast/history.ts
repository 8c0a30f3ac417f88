// Bounded history per group (docs/protocol.md "History and recovery"): every event of a
// history-enabled group gets an offset, assigned once where the event is stored, and each
// group's history has an epoch that changes whenever the history is lost. This module holds
// the option checks, the group → history rules, the store contract and the in-memory store
// (one instance, no Redis); lib/broadcast/history-redis.ts is the Redis Streams store.
import { randomBytes } from 'node:crypto'
import { errors } from '../errors.js'
import { toMilliseconds } from '../boot/duration.js'
import { GROUP_PATTERN } from '../../protocol/index.js'

/** `history` on a channel or a group declaration, as users write it. */
export interface HistoryOptions {
  /** Events kept per group (the newest). Redis trims approximately (`MAXLEN ~`), never below this. */
  size: number
  /** How long the history is kept after the group's last event: milliseconds or `'5m'`. */
  ttl: number | string
  /** Most events one recovery may replay; more missed means `recovered: false`. @default size */
  maxReplay?: number
  /** Most bytes one recovery may replay (also bounded by the outbound buffer). @default 524288 */
  maxReplayBytes?: number
  /** How long live events of a group joined by the server wait for the client's `group.recover`. @default 1000 */
  holdMs?: number
}

export interface HistoryConfig {
  size: number
  ttlMs: number
  /** the epoch and the last offset outlive the events, so a quiet group keeps its positions */
  metaTtlMs: number
  maxReplay: number
  maxReplayBytes: number
  holdMs: number
}

export interface Position { offset: number, epoch: string }
export interface StoredEvent { offset: number, frame: string }

/** What a read found: the history's epoch and last offset, and the events after `since`. */
export interface HistoryRead {
  epoch: string
  top: number
  /** events with offset > since in order; empty when more than `maxCount` were asked for */
  events: StoredEvent[]
  /** more than `maxCount` events follow `since`: not replayable */
  tooMany: boolean
}

/**
 * Where history lives. `publish` appends the event and fans it out in one step, so the
 * offset order is the delivery order on every instance.
 */
export interface HistoryStore {
  publish (group: string, cfg: HistoryConfig, head: string, exclude?: string): Promise<Position>
  /** `since < 0` reads the newest `-since` events. */
  read (group: string, cfg: HistoryConfig, since: number, maxCount: number): Promise<HistoryRead>
  close (): Promise<void>
}

const MAX_SIZE = 100_000
const DEFAULT_REPLAY_BYTES = 512 * 1024
const DEFAULT_HOLD_MS = 1000
const MIN_META_TTL_MS = 24 * 3600 * 1000
const historyKeys = new Set(['size', 'ttl', 'maxReplay', 'maxReplayBytes', 'holdMs'])

function bounded (value: unknown, where: string, fallback: number, max: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > max) {
    throw new errors.WSX_ERR_OPTS_INVALID(`${where} must be an integer from 1 to ${max}`)
  }
  return value as number
}

/** Checks `history` options at boot; throws WSX_ERR_OPTS_INVALID. */
export function compileHistory (value: unknown, where: string): HistoryConfig {
  if (typeof value !== 'object' || value === null) throw new errors.WSX_ERR_OPTS_INVALID(`${where} must be { size, ttl }`)
  for (const key of Object.keys(value)) {
    if (!historyKeys.has(key)) throw new errors.WSX_ERR_OPTS_INVALID(`${where}.${key} is not an option`)
  }
  const v = value as HistoryOptions
  const size = bounded(v.size, `${where}.size`, NaN, MAX_SIZE)
  if (v.ttl === undefined) throw new errors.WSX_ERR_OPTS_INVALID(`${where}.ttl is required (e.g. '5m')`)
  let ttlMs: number
  try {
    ttlMs = toMilliseconds(v.ttl)
  } catch {
    throw new errors.WSX_ERR_OPTS_INVALID(`${where}.ttl "${String(v.ttl)}" is not a duration`)
  }
  return {
    size,
    ttlMs: Math.ceil(ttlMs),
    metaTtlMs: Math.max(Math.ceil(ttlMs), MIN_META_TTL_MS),
    maxReplay: bounded(v.maxReplay, `${where}.maxReplay`, size, MAX_SIZE),
    maxReplayBytes: bounded(v.maxReplayBytes, `${where}.maxReplayBytes`, DEFAULT_REPLAY_BYTES, 64 * 1024 * 1024),
    holdMs: bounded(v.holdMs, `${where}.holdMs`, DEFAULT_HOLD_MS, 60_000)
  }
}

/** A fresh epoch: short, random, safe to splice into JSON. */
export function newEpoch (): string {
  return randomBytes(6).toString('base64url')
}

/** The tail every stored frame gets: its position, spliced before the closing brace. */
export function positionTail (offset: number, epoch: string): string {
  return ',"offset":' + offset + ',"epoch":"' + epoch + '"}'
}

/**
 * Which route groups keep history: `app.wsx.group('room:*', { history })` rules, exact
 * names or prefixes ending in `*`. Looked up on every broadcast, so answers are cached.
 */
export class GroupRules {
  private readonly exact = new Map<string, HistoryConfig>()
  private readonly prefixes: Array<[string, HistoryConfig]> = []
  private readonly cache = new Map<string, HistoryConfig | null>()

  get empty (): boolean { return this.exact.size === 0 && this.prefixes.length === 0 }

  add (pattern: unknown, cfg: HistoryConfig): void {
    if (typeof pattern !== 'string') throw new errors.WSX_ERR_OPTS_INVALID('group(pattern): pattern must be a group name or a prefix ending in *')
    const isPrefix = pattern.endsWith('*')
    const name = isPrefix ? pattern.slice(0, -1) : pattern
    if ((name !== '' || !isPrefix) && !GROUP_PATTERN.test(name)) throw new errors.WSX_ERR_GROUP_NAME(pattern)
    if (isPrefix) {
      if (this.prefixes.some(([p]) => p === name)) throw new errors.WSX_ERR_OPTS_INVALID(`group "${pattern}" is declared twice`)
      this.prefixes.push([name, cfg])
      // the longest prefix wins
      this.prefixes.sort((a, b) => b[0].length - a[0].length)
    } else {
      if (this.exact.has(name)) throw new errors.WSX_ERR_OPTS_INVALID(`group "${pattern}" is declared twice`)
      this.exact.set(name, cfg)
    }
    this.cache.clear()
  }

  lookup (group: string): HistoryConfig | null {
    const cached = this.cache.get(group)
    if (cached !== undefined) return cached
    let found = this.exact.get(group) ?? null
    if (found === null) {
      for (const [prefix, cfg] of this.prefixes) {
        if (group.startsWith(prefix)) { found = cfg; break }
      }
    }
    // group names are unbounded (user input): keep the cache bounded
    if (this.cache.size >= 10_000) this.cache.clear()
    this.cache.set(group, found)
    return found
  }
}

/** Hands a stored frame to the group's members on this instance (the bus, in memory). */
export type FanOut = (group: string, frame: string, meta: { exclude?: string, offset: number, epoch: string }) => Promise<void>

interface MemoryGroup {
  epoch: string
  top: number
  events: StoredEvent[]
  /** index of the oldest kept event in `events` (compacted when it grows) */
  start: number
  lastPublish: number
  cfg: HistoryConfig
}

/**
 * History in process memory: one instance, lost on restart (a new process has new epochs).
 * Bounded by `size` per group; a group's events go `ttl` after its last event, its epoch
 * and last offset `max(ttl, 24 h)` after it.
 */
export class MemoryHistory implements HistoryStore {
  private readonly groups = new Map<string, MemoryGroup>()
  private readonly fanOut: FanOut
  private readonly sweeper: NodeJS.Timeout

  constructor (fanOut: FanOut) {
    this.fanOut = fanOut
    this.sweeper = setInterval(() => { this.sweep() }, 60_000)
    this.sweeper.unref()
  }

  async publish (group: string, cfg: HistoryConfig, head: string, exclude?: string): Promise<Position> {
    const g = this.current(group, cfg)
    const offset = ++g.top
    const frame = head + positionTail(offset, g.epoch)
    g.events.push({ offset, frame })
    if (g.events.length - g.start > cfg.size) g.start++
    if (g.start > 1024 && g.start * 2 > g.events.length) {
      g.events = g.events.slice(g.start)
      g.start = 0
    }
    g.lastPublish = Date.now()
    // appending and handing to the in-process bus happen in one tick: offsets go out in order
    await this.fanOut(group, frame, exclude === undefined ? { offset, epoch: g.epoch } : { exclude, offset, epoch: g.epoch })
    return { offset, epoch: g.epoch }
  }

  async read (group: string, cfg: HistoryConfig, since: number, maxCount: number): Promise<HistoryRead> {
    const g = this.current(group, cfg)
    const from = since < 0 ? Math.max(0, g.top + since) : since
    if (g.top - from > maxCount) return { epoch: g.epoch, top: g.top, events: [], tooMany: true }
    const events: StoredEvent[] = []
    for (let i = g.start; i < g.events.length; i++) {
      const e = g.events[i]!
      if (e.offset > from) events.push(e)
    }
    return { epoch: g.epoch, top: g.top, events, tooMany: false }
  }

  async close (): Promise<void> {
    clearInterval(this.sweeper)
    this.groups.clear()
  }

  /** The group's history with expiry applied: events after `ttl`, the epoch after the meta TTL. */
  private current (group: string, cfg: HistoryConfig): MemoryGroup {
    const now = Date.now()
    let g = this.groups.get(group)
    if (g && now - g.lastPublish > cfg.metaTtlMs) g = undefined
    if (!g) {
      g = { epoch: newEpoch(), top: 0, events: [], start: 0, lastPublish: now, cfg }
      this.groups.set(group, g)
    } else if (now - g.lastPublish > cfg.ttlMs && g.events.length > 0) {
      g.events = []
      g.start = 0
    }
    return g
  }

  private sweep (): void {
    const now = Date.now()
    for (const [group, g] of this.groups) {
      const idle = now - g.lastPublish
      if (idle > g.cfg.metaTtlMs) this.groups.delete(group)
      else if (idle > g.cfg.ttlMs && g.events.length > 0) { g.events = []; g.start = 0 }
    }
  }
}
