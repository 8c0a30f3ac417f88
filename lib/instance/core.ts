// The plugin-wide state every route and connection shares: config, the connection
// index, groups, stores and counters. One per `app.register(wsx)`.
import type { FastifyBaseLogger } from 'fastify'
import { randomBytes } from 'node:crypto'
import type { WsxConfig } from '../boot/config.js'
import type { GroupRegistry } from '../broadcast/groups.js'
import type { PresenceStore } from '../broadcast/presence.js'
import type { Limiter } from '../security/stores/limiter.js'
import type { Lockout } from '../security/stores/lockout.js'
import { Stats } from './stats.js'
import { ExpiryWheel } from '../security/expiry.js'
import { errors } from '../errors.js'
import { toFields, type Validator } from '../boot/validation.js'
import { GroupRules, type HistoryStore } from '../broadcast/history.js'

/** What a connection needs from the core (kept narrow so lib/connection/connection.ts stays testable). */
export interface ConnectionRef {
  readonly id: string
  readonly userKey: string | null
  readonly ip: string
  readonly url: string
  close (code?: number, reason?: string): void
  heartbeat (): void
}

export class Core {
  readonly config: WsxConfig
  readonly log: FastifyBaseLogger
  readonly instanceId = randomBytes(4).toString('hex')
  /** envelope connections (`app.wsx.route()`) */
  readonly connections = new Set<ConnectionRef>()
  /** low-level sockets (`app.wsx.socket()`): counted against the same caps, pinged and drained too */
  readonly sockets = new Set<ConnectionRef>()
  readonly byUser = new Map<string, Set<ConnectionRef>>()
  readonly byIp = new Map<string, number>()
  readonly stats = new Stats()
  /** credential expiry for every connection, on one timer */
  readonly expiries = new ExpiryWheel()
  readonly groups: GroupRegistry
  readonly limiter: Limiter
  readonly lockout: Lockout
  presence: PresenceStore | null = null
  /** which route groups keep history (`app.wsx.group()`) */
  readonly historyRules = new GroupRules()
  /** where history lives: memory, or Redis Streams with `redis`; null when history is unsupported */
  historyStore: HistoryStore | null = null
  /** event name → compiled schema, from the routes' and channels' `events` */
  readonly eventValidators = new Map<string, { schema: object, validate: Validator }>()
  closing = false
  private seq = 0
  private heartbeatTimer: NodeJS.Timeout | null = null

  constructor (config: WsxConfig, log: FastifyBaseLogger, parts: { groups: GroupRegistry, limiter: Limiter, lockout: Lockout }) {
    this.config = config
    this.log = log
    this.groups = parts.groups
    this.limiter = parts.limiter
    this.lockout = parts.lockout
  }

  /**
   * Checks an event's data against the schema a route declared for that name (TypeBox):
   * a payload that breaks it is a programmer error, thrown before anything is sent.
   */
  checkEvent (action: string, data: unknown): void {
    const entry = this.eventValidators.get(action)
    if (entry && !entry.validate(data)) {
      throw new errors.WSX_ERR_EVENT_INVALID(action, JSON.stringify(toFields(entry.validate.errors)))
    }
  }

  nextConnectionId (): string {
    return `${this.instanceId}:${(++this.seq).toString(36)}`
  }

  /** Every open socket this plugin owns, envelope or low-level. */
  get openCount (): number {
    return this.connections.size + this.sockets.size
  }

  /** Which cap an upgrade from `ip` would break, if any: 'instance', 'ip', or 'ok' (checked at the upgrade). */
  hasRoomFor (ip: string): 'ok' | 'instance' | 'ip' {
    if (this.openCount >= this.config.maxConnections) return 'instance'
    if ((this.byIp.get(ip) ?? 0) >= this.config.maxConnectionsPerIp) return 'ip'
    return 'ok'
  }

  added (conn: ConnectionRef, kind: 'envelope' | 'socket' = 'envelope'): void {
    (kind === 'socket' ? this.sockets : this.connections).add(conn)
    this.byIp.set(conn.ip, (this.byIp.get(conn.ip) ?? 0) + 1)
    if (this.heartbeatTimer === null && this.config.heartbeatMs > 0) this.startHeartbeat()
  }

  /** Indexes an authenticated connection by user; false when the user is at the cap. */
  addUser (conn: ConnectionRef, userKey: string): boolean {
    let set = this.byUser.get(userKey)
    if (!set) {
      set = new Set()
      this.byUser.set(userKey, set)
    }
    if (set.size >= this.config.maxConnectionsPerUser && !set.has(conn)) return false
    set.add(conn)
    return true
  }

  removed (conn: ConnectionRef): void {
    if (!this.connections.delete(conn) && !this.sockets.delete(conn)) return
    const n = (this.byIp.get(conn.ip) ?? 1) - 1
    if (n <= 0) this.byIp.delete(conn.ip)
    else this.byIp.set(conn.ip, n)
    if (conn.userKey !== null) {
      const set = this.byUser.get(conn.userKey)
      set?.delete(conn)
      if (set && set.size === 0) this.byUser.delete(conn.userKey)
    }
    if (this.openCount === 0) this.stopHeartbeat()
  }

  /** Closes every local connection of a user; returns how many. */
  disconnectUserLocally (userKey: string, code: number, reason: string): number {
    const set = this.byUser.get(userKey)
    if (!set) return 0
    const list = [...set]
    for (const conn of list) conn.close(code, reason)
    return list.length
  }

  // One timer for every connection rather than one per socket.
  private startHeartbeat (): void {
    this.heartbeatTimer = setInterval(() => {
      for (const conn of this.connections) conn.heartbeat()
      for (const socket of this.sockets) socket.heartbeat()
    }, this.config.heartbeatMs)
    this.heartbeatTimer.unref()
  }

  stopHeartbeat (): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer)
    this.heartbeatTimer = null
    this.expiries.stop()
  }
}
