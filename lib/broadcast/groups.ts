// Local group membership (group → connections, connection → groups, like socket.io's
// in-memory adapter) on top of the bus: the first local member subscribes this instance
// to the group's topic, the last one to leave unsubscribes. A broadcast is serialized
// once by the caller; every instance writes that same frame to its local members.
//
// For history-enabled groups the registry also keeps, per group, the last offset this
// instance delivered: duplicates are dropped, and a gap (or a bus outage) is healed from
// the history before later frames go out, so members see offsets in order without holes.
import { errors } from '../errors.js'
import { assertGroupName } from './group-name.js'
import type { Bus, BusListener, BusMeta, FrameMeta } from './bus.js'
import type { HistoryConfig, HistoryRead, HistoryStore } from './history.js'

/** The part of the Bus the registry uses. */
export type BusLike = Pick<Bus, 'subscribe' | 'unsubscribe' | 'publish'>

export interface Member {
  readonly id: string
  readonly groupSet: Set<string>
  /** `offset` is set for events of history-enabled groups */
  deliver (frame: Buffer, group: string, offset?: number): void
}

/** Where this instance stands in a history-enabled group's stream. */
interface Track {
  cfg: HistoryConfig
  /** null until the first position is known */
  epoch: string | null
  /** the last offset handed to local members */
  last: number
  /** frames held while the history is read (initial position, gap, outage) */
  healing: Array<[string, FrameMeta]> | null
  running: Promise<boolean> | null
  again: boolean
}

interface LocalGroup {
  name: string
  members: Set<Member>
  listener: BusListener
  ready: Promise<void>
  track: Track | null
}

/** The history side the registry needs. */
export interface RegistryHistory {
  store: HistoryStore
  /** the history of these groups was lost or could not be read: members must refetch */
  onLost (groups: string[]): void
}

export class GroupRegistry {
  private readonly groups = new Map<string, LocalGroup>()
  private readonly bus: BusLike
  private readonly maxPerConnection: number
  /** frames received from the bus for local members (a metric) */
  received = 0
  history: RegistryHistory | null = null

  constructor (bus: BusLike, maxPerConnection: number) {
    this.bus = bus
    this.maxPerConnection = maxPerConnection
  }

  /**
   * Adds a member; resolves once this instance receives the group's broadcasts.
   * `history`: the group keeps history (decided by the first joiner on this instance).
   */
  async join (member: Member, group: string, history: HistoryConfig | null = null): Promise<void> {
    assertGroupName(group)
    if (member.groupSet.has(group)) return this.groups.get(group)?.ready
    if (member.groupSet.size >= this.maxPerConnection) {
      throw new errors.WSX_ERR_GROUP_LIMIT(this.maxPerConnection, group)
    }
    member.groupSet.add(group)
    let local = this.groups.get(group)
    if (!local) {
      const created: LocalGroup = { name: group, members: new Set(), listener: (frame, meta) => this.deliverLocal(created, frame, meta), ready: Promise.resolve(), track: null }
      local = created
      if (history && this.history) {
        // frames wait until this instance knows where the stream stands
        created.track = { cfg: history, epoch: null, last: 0, healing: [], running: null, again: false }
      }
      created.ready = this.bus.subscribe(group, created.listener)
      // even when the subscription failed: held frames must not wait forever
      if (created.track) created.ready = created.ready.finally(() => { this.heal(created).catch(() => {}) })
      // a failed subscribe is surfaced to the joiner; later joiners get the same promise
      created.ready.catch(() => {})
      this.groups.set(group, created)
    }
    local.members.add(member)
    return local.ready
  }

  async leave (member: Member, group: string): Promise<void> {
    if (!member.groupSet.delete(group)) return
    const local = this.groups.get(group)
    if (!local) return
    local.members.delete(member)
    if (local.members.size === 0) {
      this.groups.delete(group)
      await this.bus.unsubscribe(group, local.listener).catch(() => {})
    }
  }

  broadcast (group: string, frame: string, meta?: FrameMeta): Promise<void> {
    assertGroupName(group)
    return this.bus.publish(group, frame, meta)
  }

  /** Local members of a group on this instance. */
  localMembers (group: string): ReadonlySet<Member> {
    return this.groups.get(group)?.members ?? new Set()
  }

  /**
   * After a bus outage: heals each history-enabled group from its history (a gap it does not
   * cover is reported through `history.onLost`) and returns the groups without history,
   * whose members must refetch.
   */
  healAll (affected: string[]): string[] {
    const withoutHistory: string[] = []
    for (const group of affected) {
      const local = this.groups.get(group)
      if (!local) continue
      if (local.track === null) withoutHistory.push(group)
      else this.heal(local).catch(() => {})
    }
    return withoutHistory
  }

  private deliverLocal (local: LocalGroup, frame: string, meta: BusMeta): void {
    if (local.members.size === 0) return // a late delivery after the last member left
    this.received++
    this.accept(local, frame, meta)
  }

  /** Orders a frame against the group's stream position, then hands it to the members. */
  private accept (local: LocalGroup, frame: string, meta: FrameMeta): void {
    const t = local.track
    if (t !== null && meta.offset !== undefined) {
      if (t.healing !== null) {
        t.healing.push([frame, meta])
        return
      }
      if (t.epoch !== meta.epoch) {
        // a new epoch: the history was lost (Redis restarted without persistence, expired)
        if (t.epoch !== null) this.history?.onLost([local.name])
        t.epoch = meta.epoch!
        t.last = meta.offset - 1
      }
      if (meta.offset <= t.last) return // already delivered (healed, or delivered twice)
      if (meta.offset > t.last + 1) {
        // a hole: something was lost on the way; read it from the history first
        t.healing = [[frame, meta]]
        this.heal(local).catch(() => {})
        return
      }
      t.last = meta.offset
    }
    this.fanOut(local, frame, meta)
  }

  private fanOut (local: LocalGroup, frame: string, meta: FrameMeta): void {
    const buf = Buffer.from(frame)
    for (const member of local.members) {
      if (member.id !== meta.exclude) member.deliver(buf, local.name, meta.offset)
    }
  }

  /** Reads the group's history from the last delivered offset; resolves whether it covered the gap. */
  private heal (local: LocalGroup): Promise<boolean> {
    const t = local.track!
    t.healing ??= []
    if (t.running) {
      t.again = true
      return t.running
    }
    const run = async (): Promise<boolean> => {
      let covered = true
      do {
        t.again = false
        covered = await this.healOnce(local, t) && covered
      } while (t.again && this.groups.get(local.name) === local)
      return covered
    }
    t.running = run().finally(() => { t.running = null })
    return t.running
  }

  private async healOnce (local: LocalGroup, t: Track): Promise<boolean> {
    const cfg = t.cfg
    if (!this.history) return false
    const initial = t.epoch === null
    let read: HistoryRead | null = null
    try {
      read = await this.history.store.read(local.name, cfg, initial ? 0 : t.last, initial ? 0 : cfg.maxReplay)
    } catch {
      read = null
    }
    if (this.groups.get(local.name) !== local) return true
    const held = t.healing ?? []
    t.healing = null
    let covered: boolean
    if (read === null) {
      // the history cannot be read: continue from whatever arrives next
      covered = false
      t.epoch = null
    } else if (initial) {
      covered = true
      t.epoch = read.epoch
      const first = held.find(([, meta]) => meta.epoch === read.epoch)
      t.last = first ? Math.min(read.top, first[1].offset! - 1) : read.top
    } else if (read.epoch !== t.epoch || read.tooMany || (read.top > t.last && read.events[0]?.offset !== t.last + 1)) {
      // not covered: members are told to refetch; the live frames held meanwhile still go out
      covered = false
      t.epoch = read.epoch
      const first = held.find(([, meta]) => meta.epoch === read.epoch)
      t.last = first ? Math.min(read.top, first[1].offset! - 1) : read.top
    } else {
      covered = true
      for (const event of read.events) {
        if (event.offset <= t.last) continue
        t.last = event.offset
        this.fanOut(local, event.frame, { offset: event.offset, epoch: read.epoch })
      }
    }
    if (!covered && !initial) this.history.onLost([local.name])
    // what arrived meanwhile goes through the usual checks (duplicates dropped, new holes healed)
    for (const [frame, meta] of held) this.accept(local, frame, meta)
    return covered
  }
}
