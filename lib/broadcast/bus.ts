// The Bus carries already-serialized frames to the members of a group on every instance,
// over any mqemitter-compatible emitter (in-process mqemitter by default, mqemitter-redis
// across instances), one emitter topic per group however many local listeners it has:
// - group names are validated, so no wildcard or Redis glob ever reaches a topic;
// - payloads are JSON text strings, so msgpack cannot revive `__proto__` or choke on depth;
// - what arrives is shape-checked: garbage on our channels is dropped, never delivered;
// - publish, subscribe and close never hang, even with Redis stopped or frozen.
// On Redis, the emitter's internals are patched by lib/redis/emitter-patches.ts and the
// link's health followed by link-monitor.ts, which says when to resync the groups
// (`onResync`: the `socket.resync` of README.md#delivery-and-recovery).
import mqemitter from 'mqemitter'
import sjson from 'secure-json-parse'
import { SAFE_PARSE_OPTIONS } from '../connection/json-codec.js'
import { GROUP_PATTERN } from '../../protocol/index.js'
import type { WsxEmitter } from '../../types/options.js'
import { BusUnavailableError, errors } from '../errors.js'
import { disconnectRedis } from '../redis/client.js'
import { patchRedisEmitter, type RedisEmitterParts } from '../redis/emitter-patches.js'
import { assertGroupName, assertNamespace } from './group-name.js'
import { LinkMonitor } from './link-monitor.js'

/** The part of a pino/Fastify logger the bus uses. */
export interface BusLogger {
  debug (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
  error (obj: object, msg?: string): void
}

/** What travels with a frame besides its text. */
export interface FrameMeta {
  /** connection id the publisher asked to skip (exclude-sender) */
  exclude?: string
  /** position of the event in the group's history (history-enabled groups only) */
  offset?: number
  epoch?: string
}

/** What a group listener learns besides the frame. */
export interface BusMeta extends FrameMeta {
  group: string
}

export type BusListener = (frame: string, meta: BusMeta) => void
export type ControlHandler = (payload: Record<string, unknown>) => void | Promise<void>
export type ResyncListener = (groups: string[]) => void

type EmitterMessage = Parameters<WsxEmitter['emit']>[0]
type EmitterListener = Parameters<WsxEmitter['on']>[1]

export interface BusOptions {
  /** default: an in-process mqemitter (single instance) */
  emitter?: WsxEmitter
  /** prefix of every topic, e.g. one per application sharing a Redis; default 'wsx' */
  namespace?: string
  log?: BusLogger
  /** how long subscribe/unsubscribe wait for the backend's acknowledgement (default 2000 ms) */
  ackTimeoutMs?: number
  /** how long publish waits before rejecting (default 2000 ms) */
  publishTimeoutMs?: number
  /** how long close waits for the emitter before forcing it (default 1000 ms) */
  closeTimeoutMs?: number
  /**
   * How often the subscriber link is probed with a PING (Redis only, default 2000 ms). A
   * frozen Redis keeps its sockets open and sends no error: an unanswered probe is what
   * marks the link down, so the thaw ends in a resync. `0` disables probing.
   */
  probeIntervalMs?: number
}

const PACKET_VERSION = 1
const DROP_LOG_INTERVAL_MS = 10_000

interface Packet extends FrameMeta { frame: string }

/**
 * Shape check of what the emitter hands us: anything that was not written by publish()
 * (someone else's PUBLISH, a stale format, a prototype trick from msgpack) is refused.
 * Own properties only: msgpack can give an object a crafted prototype.
 */
function readPacket (msg: unknown, topic: string): Packet | null {
  if (typeof msg !== 'object' || msg === null) return null
  const own = (k: string): unknown => Object.hasOwn(msg, k) ? (msg as Record<string, unknown>)[k] : undefined
  if (own('topic') !== topic || own('v') !== PACKET_VERSION) return null
  const frame = own('frame')
  if (typeof frame !== 'string') return null
  const packet: Packet = { frame }
  const exclude = own('exclude')
  if (exclude !== undefined) {
    if (typeof exclude !== 'string') return null
    packet.exclude = exclude
  }
  // a history position comes as a pair, or not at all
  const offset = own('offset')
  const epoch = own('epoch')
  if (offset !== undefined || epoch !== undefined) {
    if (!Number.isSafeInteger(offset) || (offset as number) < 1 || typeof epoch !== 'string') return null
    packet.offset = offset as number
    packet.epoch = epoch
  }
  return packet
}

interface Subscription {
  topic: string
  kind: 'group' | 'control'
  name: string
  listeners: Set<BusListener | ControlHandler>
  relay: EmitterListener
  acked: Promise<void>
  /** not acknowledged in time: owes its listeners a resync, unless a full one covers it */
  unconfirmed: boolean
}

const silentLog: BusLogger = { debug () {}, warn () {}, error () {} }

/**
 * Group and control pub/sub over an mqemitter-compatible emitter.
 * Topics: `${namespace}/g/${group}` for frames, `${namespace}/c/${kind}` for control commands.
 */
export class Bus {
  private readonly emitter: WsxEmitter
  private readonly namespace: string
  private readonly log: BusLogger
  private readonly ackTimeoutMs: number
  private readonly publishTimeoutMs: number
  private readonly closeTimeoutMs: number
  private readonly redis: RedisEmitterParts | null
  /** the health of the Redis links; null for an emitter that has none to follow */
  private readonly monitor: LinkMonitor | null
  private readonly subs = new Map<string, Subscription>()
  private readonly resyncListeners = new Set<ResyncListener>()
  private closed = false
  private lastDropLog = 0

  constructor (opts: BusOptions = {}) {
    this.namespace = opts.namespace ?? 'wsx'
    assertNamespace(this.namespace, 'bus namespace')
    this.emitter = opts.emitter ?? (mqemitter() as unknown as WsxEmitter)
    this.log = opts.log ?? silentLog
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 2000
    this.publishTimeoutMs = opts.publishTimeoutMs ?? 2000
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 1000
    // an emitter built by createRedisEmitter is patched already; one the app built is patched
    // here, before the monitor listens: on 'ready', held subscriptions go out before its PING
    this.redis = patchRedisEmitter(this.emitter)
    if (this.redis) {
      this.redis.hooks = {
        onGarbage: (channel, err) => this.dropped(channel, 'undecodable message', err),
        onError: (err) => this.monitor?.backendError(err)
      }
    }
    this.monitor = this.redis === null
      ? null
      : new LinkMonitor({
        subscriber: this.redis.link,
        publisher: this.redis.pubConn,
        pingTimeoutMs: this.ackTimeoutMs,
        probeIntervalMs: opts.probeIntervalMs ?? 2000,
        log: this.log,
        onBack: () => {
          const groups = this.groups()
          if (groups.length > 0) this.emitResync(groups)
        }
      })
  }

  /**
   * false while the backend is unreachable (subscriber link down or not yet confirmed,
   * publisher link down): publish() then rejects at once. A frozen Redis that keeps its
   * sockets open is seen by the next unanswered probe; until then publish() rejects on
   * its timeout.
   */
  get up (): boolean {
    if (this.closed) return false
    return this.monitor === null || this.monitor.up
  }

  /** Groups with at least one local listener. */
  groups (): string[] {
    const out: string[] = []
    for (const sub of this.subs.values()) if (sub.kind === 'group') out.push(sub.name)
    return out
  }

  /**
   * Adds a local listener to `group`. The emitter topic is subscribed once, by the first
   * listener. Resolves once the backend acknowledged, or after `ackTimeoutMs` (the listener
   * stays registered; a late acknowledgement triggers a resync of the group).
   * Rejects with WSX_ERR_GROUP_NAME for a name outside GROUP_PATTERN.
   */
  async subscribe (group: string, listener: BusListener): Promise<void> {
    assertGroupName(group)
    return this.addListener('group', group, listener)
  }

  /** Removes a local listener; the last one unsubscribes the emitter topic. */
  async unsubscribe (group: string, listener: BusListener): Promise<void> {
    assertGroupName(group)
    return this.removeListener(this.topic('group', group), listener)
  }

  /**
   * Publishes an already-serialized frame to every member of `group` on every instance.
   * Fails fast instead of queueing: rejects with BusUnavailableError when the link is down,
   * when the backend errs, or after `publishTimeoutMs` (the frame may then still be sent).
   * Resolving means the backend accepted the frame, not that anyone received it.
   */
  async publish (group: string, frame: string, meta: FrameMeta = {}): Promise<void> {
    assertGroupName(group)
    if (typeof frame !== 'string') throw new TypeError('bus frames are serialized JSON strings')
    if (meta.exclude !== undefined && typeof meta.exclude !== 'string') throw new TypeError('exclude must be a connection id')
    await this.emit(this.topic('group', group), frame, meta.exclude, meta.offset === undefined ? undefined : { offset: meta.offset, epoch: meta.epoch ?? '' })
  }

  /** The emitter topic of a group (the Redis channel with mqemitter-redis). */
  topicOf (group: string): string {
    assertGroupName(group)
    return this.topic('group', group)
  }

  /** Whether frames travel through Redis (mqemitter-redis), as opposed to this process or a custom emitter. */
  get onRedis (): boolean {
    return this.redis !== null
  }

  /**
   * Sends a command to every instance (this one included), e.g. "disconnect user X".
   * Resolves how many subscribers Redis handed it to (one per instance listening to
   * `kind`), or null when the emitter cannot tell (in process, custom, Redis Cluster).
   */
  async publishControl (kind: string, payload: Record<string, unknown>): Promise<number | null> {
    this.assertKind(kind)
    return this.emit(this.topic('control', kind), JSON.stringify(payload))
  }

  /** Receives control commands of `kind`; payloads are parsed with prototype checks. */
  async onControl (kind: string, handler: ControlHandler): Promise<void> {
    this.assertKind(kind)
    return this.addListener('control', kind, handler)
  }

  /**
   * Called once each time the link is back after an outage (or a dropped subscription),
   * with the groups subscribed at that time. Returns a function that removes `cb`.
   */
  onResync (cb: ResyncListener): () => void {
    this.resyncListeners.add(cb)
    return () => { this.resyncListeners.delete(cb) }
  }

  /** Drops every listener and closes the emitter; never takes more than `closeTimeoutMs`. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.subs.clear()
    this.resyncListeners.clear()
    // the 'error' listener on mqemitter-redis' state stays: an error after close must not crash either
    this.monitor?.close()
    const closed = await this.within(this.closeTimeoutMs, (done) => this.emitter.close(done))
    if (!closed) this.log.warn({}, 'wsx bus: emitter did not close in time; disconnecting')
    if (this.redis) {
      // quit() can wait forever while Redis is down: cut the sockets and stop reconnecting
      await Promise.all([disconnectRedis(this.redis.subConn), disconnectRedis(this.redis.pubConn)])
    }
  }

  private topic (kind: 'group' | 'control', name: string): string {
    return `${this.namespace}/${kind === 'group' ? 'g' : 'c'}/${name}`
  }

  private assertKind (kind: string): void {
    if (typeof kind !== 'string' || !GROUP_PATTERN.test(kind)) throw new errors.WSX_ERR_OPTS_INVALID(`bus control kind "${String(kind)}" must match ${GROUP_PATTERN}`)
  }

  private async addListener (kind: 'group' | 'control', name: string, listener: BusListener | ControlHandler): Promise<void> {
    if (this.closed) throw new BusUnavailableError('closed')
    const topic = this.topic(kind, name)
    const existing = this.subs.get(topic)
    if (existing) {
      existing.listeners.add(listener)
      return existing.acked
    }
    const sub: Subscription = {
      topic,
      kind,
      name,
      listeners: new Set([listener]),
      relay: (message, done) => {
        try {
          this.deliver(sub, message)
        } finally {
          done()
        }
      },
      acked: Promise.resolve(),
      unconfirmed: false
    }
    this.subs.set(topic, sub)
    sub.acked = this.within(this.ackTimeoutMs, (done) => this.emitter.on(topic, sub.relay, done), () => this.lateAck(sub))
      .then((inTime) => {
        if (inTime) return
        sub.unconfirmed = true
        this.log.warn({ topic }, 'wsx bus: subscription not acknowledged in time')
      })
    return sub.acked
  }

  private async removeListener (topic: string, listener: BusListener | ControlHandler): Promise<void> {
    const sub = this.subs.get(topic)
    if (!sub || !sub.listeners.delete(listener) || sub.listeners.size > 0) return
    this.subs.delete(topic)
    if (this.closed) return
    await this.within(this.ackTimeoutMs, (done) => this.emitter.removeListener(topic, sub.relay, done))
  }

  /** Hands one emitter message to the local listeners of `sub`, or drops it. */
  private deliver (sub: Subscription, message: unknown): void {
    // late delivery: the group was left (or the bus closed) while this was in flight
    if (this.closed || this.subs.get(sub.topic) !== sub) return
    const packet = readPacket(message, sub.topic)
    if (!packet) {
      this.dropped(sub.topic, 'malformed packet')
      return
    }
    if (sub.kind === 'group') this.deliverFrame(sub, packet)
    else this.deliverControl(sub, packet.frame)
  }

  private deliverFrame (sub: Subscription, packet: Packet): void {
    const meta: BusMeta = { group: sub.name }
    if (packet.exclude !== undefined) meta.exclude = packet.exclude
    if (packet.offset !== undefined) {
      meta.offset = packet.offset
      meta.epoch = packet.epoch!
    }
    for (const listener of [...sub.listeners]) {
      if (!sub.listeners.has(listener)) continue // removed by an earlier listener of this round
      try {
        (listener as BusListener)(packet.frame, meta)
      } catch (err) {
        this.log.error({ err, group: sub.name }, 'wsx bus: group listener threw')
      }
    }
  }

  private deliverControl (sub: Subscription, text: string): void {
    let payload: unknown
    try {
      payload = sjson.parse(text, undefined, SAFE_PARSE_OPTIONS)
    } catch (err) {
      this.dropped(sub.topic, 'unparsable control payload', err)
      return
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      this.dropped(sub.topic, 'control payload is not an object')
      return
    }
    for (const handler of [...sub.listeners]) {
      if (!sub.listeners.has(handler)) continue
      const report = (err: unknown) => this.log.error({ err, kind: sub.name }, 'wsx bus: control handler failed')
      try {
        const result = (handler as ControlHandler)(payload as Record<string, unknown>)
        if (result && typeof result.then === 'function') result.then(undefined, report)
      } catch (err) {
        report(err)
      }
    }
  }

  /** Hands one packet to the emitter; resolves how many subscribers got it, when known. */
  private async emit (topic: string, frame: string, exclude?: string, position?: { offset: number, epoch: string }): Promise<number | null> {
    if (this.closed) throw new BusUnavailableError('closed')
    if (!this.up) throw new BusUnavailableError('backend link is down')
    const message: EmitterMessage = exclude === undefined
      ? { topic, v: PACKET_VERSION, frame }
      : { topic, v: PACKET_VERSION, frame, exclude }
    if (position) {
      message.offset = position.offset
      message.epoch = position.epoch
    }
    let receivers: Promise<number | null> = Promise.resolve(null)
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new BusUnavailableError(`publish not acknowledged within ${this.publishTimeoutMs} ms`)), this.publishTimeoutMs)
      timer.unref()
      const send = (): void => {
        this.emitter.emit(message, (err) => {
          clearTimeout(timer)
          if (err) reject(new BusUnavailableError('publish failed', { cause: err }))
          else resolve()
        })
      }
      try {
        if (this.redis) receivers = this.redis.receivers(send)
        else send()
      } catch (err) {
        clearTimeout(timer)
        reject(new BusUnavailableError('publish failed', { cause: err }))
      }
    })
    return receivers
  }

  /** Runs `start(done)`; resolves true if done came within `ms`, false otherwise (then `late` runs when it does). */
  private within (ms: number, start: (done: () => void) => void, late?: () => void): Promise<boolean> {
    return new Promise((resolve) => {
      let timedOut = false
      const timer = setTimeout(() => { timedOut = true; resolve(false) }, ms)
      timer.unref()
      const done = () => {
        if (timedOut) { late?.(); return }
        clearTimeout(timer)
        resolve(true)
      }
      try {
        start(done)
      } catch (err) {
        this.log.error({ err }, 'wsx bus: emitter threw')
        clearTimeout(timer)
        resolve(false)
      }
    })
  }

  /** A subscription acknowledged after its timeout may have missed messages meanwhile. */
  private lateAck (sub: Subscription): void {
    if (this.closed || this.subs.get(sub.topic) !== sub || sub.kind !== 'group' || !sub.unconfirmed) return
    if (this.up) this.emitResync([sub.name])
    else this.monitor?.noteMissed()
  }

  private emitResync (groups: string[]): void {
    for (const group of groups) {
      const sub = this.subs.get(this.topic('group', group))
      if (sub) sub.unconfirmed = false
    }
    for (const cb of [...this.resyncListeners]) {
      try {
        cb(groups)
      } catch (err) {
        this.log.error({ err }, 'wsx bus: resync listener threw')
      }
    }
  }

  /** Garbage on our channels is logged at most once per interval: it could be a flood. */
  private dropped (topic: string, reason: string, err?: unknown): void {
    const now = Date.now()
    if (now - this.lastDropLog < DROP_LOG_INTERVAL_MS) return
    this.lastDropLog = now
    this.log.warn({ topic, reason, err }, 'wsx bus: dropped a message that was not ours')
  }
}
