// Local group membership (group → connections, connection → groups, like socket.io's
// in-memory adapter) on top of the bus: the first local member subscribes this instance
// to the group's topic, the last one to leave unsubscribes. A broadcast is serialized
// once by the caller; every instance writes that same frame to its local members.
import { errors } from './errors.js'
import { GROUP_PATTERN } from './protocol.js'

export interface BusMeta { exclude?: string }
export type BusListener = (frame: string, meta: BusMeta) => void

export interface BusLike {
  subscribe (group: string, listener: BusListener): Promise<void>
  unsubscribe (group: string, listener: BusListener): Promise<void>
  publish (group: string, frame: string, meta?: BusMeta): Promise<void>
}

export interface Member {
  readonly id: string
  readonly groupSet: Set<string>
  deliver (frame: Buffer): void
}

interface LocalGroup {
  members: Set<Member>
  listener: BusListener
  ready: Promise<void>
}

export function assertGroupName (name: unknown): asserts name is string {
  if (typeof name !== 'string' || !GROUP_PATTERN.test(name)) throw new errors.WSX_ERR_GROUP_NAME(String(name))
}

export class GroupRegistry {
  private readonly groups = new Map<string, LocalGroup>()
  private readonly bus: BusLike
  private readonly maxPerConnection: number
  /** frames received from the bus for local members (a metric) */
  received = 0

  constructor (bus: BusLike, maxPerConnection: number) {
    this.bus = bus
    this.maxPerConnection = maxPerConnection
  }

  /** Adds a member; resolves once this instance receives the group's broadcasts. */
  async join (member: Member, group: string): Promise<void> {
    assertGroupName(group)
    if (member.groupSet.has(group)) return this.groups.get(group)?.ready
    if (member.groupSet.size >= this.maxPerConnection) {
      throw new errors.WSX_ERR_GROUP_NAME(`${group}" (a connection may be in ${this.maxPerConnection} groups at most)`)
    }
    member.groupSet.add(group)
    let local = this.groups.get(group)
    if (!local) {
      const members = new Set<Member>()
      const listener: BusListener = (frame, meta) => this.deliverLocal(members, frame, meta)
      local = { members, listener, ready: this.bus.subscribe(group, listener) }
      // a failed subscribe is surfaced to the joiner; later joiners get the same promise
      local.ready.catch(() => {})
      this.groups.set(group, local)
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

  broadcast (group: string, frame: string, meta?: BusMeta): Promise<void> {
    assertGroupName(group)
    return this.bus.publish(group, frame, meta)
  }

  /** Local members of a group on this instance. */
  localMembers (group: string): ReadonlySet<Member> {
    return this.groups.get(group)?.members ?? new Set()
  }

  private deliverLocal (members: Set<Member>, frame: string, meta: BusMeta): void {
    if (members.size === 0) return // a late delivery after the last member left
    this.received++
    const buf = Buffer.from(frame)
    for (const member of members) {
      if (member.id !== meta.exclude) member.deliver(buf)
    }
  }
}
