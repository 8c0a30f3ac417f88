// Recovery of missed events (docs/protocol.md "History and recovery"). While a connection
// recovers a group, that group's live frames are held for it; the server reads the history,
// answers, replays the missed events in order, then sends the held live frames newer than
// the replay: no duplicate and no reordering across the boundary. The replay is bounded by
// count and bytes, and the bytes count against the connection's outbound buffer limit.
import type { Connection } from '../connection/connection.js'
import { eventFrame, okFrame, type Envelope } from '../connection/envelope.js'
import { WsxError } from '../errors.js'
import { ErrorCode, GROUP_PATTERN, ServerEvent } from '../../protocol/index.js'
import type { HistoryConfig, StoredEvent } from './history.js'
import { replyError } from '../connection/answer.js'

/** Live frames of one group waiting for a recovery (or its hold timeout). */
export interface Hold {
  frames: Buffer[]
  offsets: Array<number | undefined>
  bytes: number
  timer: NodeJS.Timeout | null
}

/** What a client asks for: the events after its position, or the newest `last` events. */
export type Want = { since: number, epoch: string } | { last: number } | null

export interface Recovery {
  /** undefined when nothing was asked to recover (no position given) */
  recovered: boolean | undefined
  epoch: string | null
  offset: number | null
  events: StoredEvent[]
}

const MAX_EPOCH_LENGTH = 64

/** Starts holding `group`'s live frames for `conn`; with `ms`, they go out by themselves after it. */
export function startHold (conn: Connection, group: string, ms: number | null): void {
  const holds = (conn.holds ??= new Map())
  if (holds.has(group)) return
  const hold: Hold = { frames: [], offsets: [], bytes: 0, timer: null }
  if (ms !== null) {
    hold.timer = setTimeout(() => releaseHold(conn, group, 0), ms)
    hold.timer.unref()
  }
  holds.set(group, hold)
}

export function holdFrame (conn: Connection, hold: Hold, frame: Buffer, offset: number | undefined): void {
  hold.frames.push(frame)
  hold.offsets.push(offset)
  hold.bytes += frame.length
  // held frames are outbound bytes like any other: a reader this far behind is closed
  if (hold.bytes + conn.socket.bufferedAmount > conn.core.config.maxBufferedBytes) conn.closeSlowReader()
}

/** Stops holding without sending anything (the connection left the group); returns the hold. */
export function dropHold (conn: Connection, group: string): Hold | undefined {
  const hold = conn.holds?.get(group)
  if (!hold) return undefined
  conn.holds!.delete(group)
  if (conn.holds!.size === 0) conn.holds = null
  if (hold.timer) clearTimeout(hold.timer)
  return hold
}

/** Sends the held frames newer than `after` (frames without an offset always), and stops holding. */
export function releaseHold (conn: Connection, group: string, after: number): void {
  const hold = dropHold(conn, group)
  if (!hold) return
  for (let i = 0; i < hold.frames.length; i++) {
    const offset = hold.offsets[i]
    if (offset === undefined || offset > after) conn.sendRaw(hold.frames[i]!)
  }
}

/** Checks a position from the wire: `{ offset, epoch }`, `{ last }`, or absent. */
export function parseWant (value: unknown, cfg: HistoryConfig, field: string): Want {
  if (value === undefined || value === null) return null
  const bad = (detail: string) => new WsxError(ErrorCode.validation, 'Invalid recovery position.', { fields: { [field]: [detail] } })
  if (typeof value !== 'object' || Array.isArray(value)) throw bad('must be { offset, epoch } or { last }')
  const v = value as Record<string, unknown>
  if (v.last !== undefined) {
    if (!Number.isSafeInteger(v.last) || (v.last as number) < 1 || (v.last as number) > cfg.maxReplay) throw bad(`last must be an integer from 1 to ${cfg.maxReplay}`)
    if (v.offset !== undefined || v.epoch !== undefined) throw bad('last cannot be combined with offset or epoch')
    return { last: v.last as number }
  }
  if (!Number.isSafeInteger(v.offset) || (v.offset as number) < 0) throw bad('offset must be a non-negative integer')
  if (typeof v.epoch !== 'string' || v.epoch.length === 0 || v.epoch.length > MAX_EPOCH_LENGTH) throw bad('epoch must be the string the server sent')
  for (const key of Object.keys(v)) {
    if (key !== 'offset' && key !== 'epoch') throw bad(`unknown key "${key}"`)
  }
  return { since: v.offset as number, epoch: v.epoch }
}

/**
 * Reads what `want` asks for. Recovered means: same epoch, the history still holds every
 * event after the position, and they fit the count and byte bounds. Never rejects: a store
 * that cannot be read answers `recovered: false` with no position.
 */
export async function readRecovery (conn: Connection, group: string, cfg: HistoryConfig, want: Want): Promise<Recovery> {
  const store = conn.core.historyStore
  if (!store) return { recovered: want === null ? undefined : false, epoch: null, offset: null, events: [] }
  try {
    if (want === null) {
      const read = await store.read(group, cfg, 0, 0)
      return { recovered: undefined, epoch: read.epoch, offset: read.top, events: [] }
    }
    const budget = byteBudget(conn, group, cfg)
    if ('last' in want) {
      const read = await store.read(group, cfg, -want.last, cfg.maxReplay)
      // the newest events that fit the byte budget
      let bytes = 0
      let from = read.events.length
      while (from > 0 && bytes + Buffer.byteLength(read.events[from - 1]!.frame) <= budget) bytes += Buffer.byteLength(read.events[--from]!.frame)
      return { recovered: undefined, epoch: read.epoch, offset: read.top, events: read.events.slice(from) }
    }
    const read = await store.read(group, cfg, want.since, cfg.maxReplay)
    const base = { epoch: read.epoch, offset: read.top }
    const covered = read.epoch === want.epoch && want.since <= read.top && !read.tooMany &&
      (want.since === read.top || (read.events[0]?.offset === want.since + 1 && read.events.length === read.top - want.since))
    if (!covered) return { ...base, recovered: false, events: [] }
    let bytes = 0
    for (const event of read.events) bytes += Buffer.byteLength(event.frame)
    if (bytes > budget) return { ...base, recovered: false, events: [] }
    return { ...base, recovered: true, events: read.events }
  } catch (err) {
    conn.log.warn({ err, group }, 'wsx: history read failed; answering recovered: false')
    return { recovered: want === null ? undefined : false, epoch: null, offset: null, events: [] }
  }
}

/** The replay may use what is left of the outbound buffer, and at most `maxReplayBytes`. */
function byteBudget (conn: Connection, group: string, cfg: HistoryConfig): number {
  const held = conn.holds?.get(group)?.bytes ?? 0
  return Math.max(0, Math.min(cfg.maxReplayBytes, conn.core.config.maxBufferedBytes - conn.socket.bufferedAmount - held))
}

/** The position part of a reply: `recovered` only when a position was given. */
export function positionJson (r: Recovery): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (r.recovered !== undefined) out.recovered = r.recovered
  if (r.epoch !== null) {
    out.epoch = r.epoch
    out.offset = r.offset
  }
  return out
}

/** Replays, then lets the held live frames through (those the replay did not cover). */
export function replayAndRelease (conn: Connection, group: string, r: Recovery): void {
  // no hold any more: the connection left the group (or closed) during the read
  if (!conn.holds?.has(group)) return
  for (const event of r.events) conn.sendRaw(event.frame)
  // every event up to `offset` went out (replay) or was asked not to (recovered: false and
  // no position): live frames at or below it are duplicates only after a replay
  const covered = r.recovered === true || r.events.length > 0
  releaseHold(conn, group, covered ? r.offset ?? 0 : 0)
}

/**
 * After a connection joined a history group outside `channel.subscribe` (the route's
 * `groups`, or `conn.join` in a handler): tells it where the group's history stands, so the
 * client can answer with `group.recover` while its live frames are held.
 */
export async function announceGroup (conn: Connection, group: string, cfg: HistoryConfig): Promise<void> {
  const r = await readRecovery(conn, group, cfg, null)
  if (r.epoch === null) {
    releaseHold(conn, group, 0)
    return
  }
  conn.sendRaw(eventFrame(ServerEvent.groupJoined, { group, epoch: r.epoch, offset: r.offset }))
}

/** The built-in `group.recover` `{ group, offset, epoch }` or `{ group, last }`. */
export async function recoverGroup (conn: Connection, env: Envelope): Promise<void> {
  const group = env.data.group
  if (typeof group !== 'string' || !GROUP_PATTERN.test(group)) {
    return replyError(conn, env, new WsxError(ErrorCode.validation, 'Invalid group.', { fields: { group: ['must be a group name'] } }))
  }
  const cfg = conn.groupSet.has(group) ? conn.historyOf(group) : null
  if (!cfg) return replyError(conn, env, new WsxError(ErrorCode.notFound, 'Not a member of a group with history.'))
  const { group: _g, ...position } = env.data
  const want = parseWant(Object.keys(position).length === 0 ? null : position, cfg, 'data')
  const held = conn.holds?.get(group)
  if (!held) {
    // live frames already went out: a replay now would come after newer events
    const r = await readRecovery(conn, group, cfg, null)
    conn.core.stats.outcome(env.action, 'ok')
    if (env.id !== null) conn.sendRaw(okFrame(env.id, JSON.stringify({ group, ...positionJson({ ...r, recovered: want === null ? undefined : false }) }), env.trace_id))
    return
  }
  if (held.timer) {
    clearTimeout(held.timer)
    held.timer = null
  }
  const r = await readRecovery(conn, group, cfg, want)
  conn.core.stats.outcome(env.action, 'ok')
  if (env.id !== null) conn.sendRaw(okFrame(env.id, JSON.stringify({ group, ...positionJson(r) }), env.trace_id))
  replayAndRelease(conn, group, r)
}
