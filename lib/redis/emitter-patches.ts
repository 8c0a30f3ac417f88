// mqemitter-redis and its ioredis connections, as the bus needs them. The bus relies on
// parts of mqemitter-redis its types do not declare (its two connections and its `state`
// emitter) and changes their behaviour in five places, each for a failure of (or a gap
// in) the stock stack:
// - a message that does not decode throws inside ioredis' event handler, which kills the
//   process: mqemitter-redis' message handlers run behind a try/catch;
// - close() ignores the promise of QUIT, which rejects while Redis is down (an unhandled
//   rejection ends the process): that promise gets a handler;
// - `state` re-emits connection errors, and an EventEmitter without an 'error' listener
//   throws: it gets one;
// - ioredis 5 writes a SUBSCRIBE issued during the connection's handshake straight away,
//   before its ready check; the connection enters subscriber mode, ioredis then refuses its
//   own INFO, reconnects, and the subscription is gone while SUBSCRIBE reported success
//   (at boot, a control subscription lost this way made user pushes go unacknowledged).
//   SUBSCRIBE and its kin wait until the subscriber connection is ready;
// - PUBLISH answers how many subscribers got the message, which mqemitter-redis drops: it
//   is kept for the caller that asks (the control protocol knows how many answers to await).
// Each patch first checks that what it patches is there, in the shape it expects: if a new
// version moved it, boot fails with WSX_ERR_REDIS_INTERNALS instead of a guarantee being
// lost silently. An emitter is patched once.
import { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import type { WsxEmitter } from '../../types/options.js'
import type { SubscriberLink } from '../broadcast/link-monitor.js'
import { errors } from '../errors.js'

/** The undeclared parts of mqemitter-redis the bus uses. */
export interface RedisEmitterParts {
  subConn: Redis
  pubConn: Redis
  /** the subscriber link to follow: `link` when the emitter provides one (Cluster), else subConn */
  link: SubscriberLink
  /**
   * Runs `emit` (which must call PUBLISH synchronously, as mqemitter-redis' emit does) and
   * resolves how many subscribers Redis delivered the message to; null when that is not
   * known (Redis Cluster counts only the subscribers of one node, or PUBLISH failed).
   */
  receivers (emit: () => void): Promise<number | null>
  /** where the patches report; the bus sets them (until then, reports are dropped) */
  hooks: EmitterPatchHooks
}

export interface EmitterPatchHooks {
  /** a message on a subscribed channel could not be decoded */
  onGarbage (channel: string, err: unknown): void
  /** an error re-emitted by mqemitter-redis' `state` */
  onError (err: unknown): void
}

const PARTS = Symbol('wsx.redisEmitterParts')

// every status ioredis (5 and 6, Redis and Cluster) gives a connection
const KNOWN_STATUSES = new Set(['wait', 'connecting', 'connect', 'ready', 'reconnecting', 'disconnecting', 'close', 'end', 'monitoring'])
const PUBSUB_COMMANDS = ['subscribe', 'psubscribe', 'unsubscribe', 'punsubscribe'] as const
const MESSAGE_EVENTS = ['messageBuffer', 'pmessageBuffer'] as const

const GUARDED = Symbol('wsx.guarded')

function shapeError (what: string, why: string): Error {
  return new errors.WSX_ERR_REDIS_INTERNALS(what, why)
}

/** The connection methods and fields the patches and the bus use, whatever ioredis major. */
function assertConnection (conn: unknown, name: string, methods: readonly string[]): asserts conn is Redis {
  if (typeof conn !== 'object' || conn === null) throw shapeError('mqemitter-redis', `${name} is not a connection`)
  const c = conn as Record<string, unknown>
  for (const m of ['on', 'removeListener', 'listeners', 'quit', ...methods]) {
    if (typeof c[m] !== 'function') throw shapeError('mqemitter-redis', `${name}.${m} is not a function`)
  }
  if (typeof c.status !== 'string' || !KNOWN_STATUSES.has(c.status)) throw shapeError('ioredis', `${name}.status is ${String(c.status)}`)
}

/**
 * Recognises an mqemitter-redis (it has `subConn` or `pubConn`), checks its shape and patches
 * it, once: patched right after it is built, so that nothing (an 'error' while Redis is down)
 * can reach it unguarded. Returns null for any other emitter (the in-process mqemitter, a
 * custom one). Throws WSX_ERR_REDIS_INTERNALS, leaving it untouched, when it is one but not
 * in the shape the patches expect. A Cluster emitter gets its `link` before this.
 */
export function patchRedisEmitter (emitter: WsxEmitter): RedisEmitterParts | null {
  const e = emitter as unknown as Record<PropertyKey, unknown>
  if (e[PARTS]) return e[PARTS] as RedisEmitterParts
  if (!('subConn' in e) && !('pubConn' in e)) return null
  const { subConn, pubConn, state } = e
  assertConnection(subConn, 'subConn', PUBSUB_COMMANDS)
  assertConnection(pubConn, 'pubConn', ['publish'])
  if (!(state instanceof EventEmitter)) throw shapeError('mqemitter-redis', 'state is not an EventEmitter')
  const given = e.link as SubscriberLink | undefined
  const link: SubscriberLink = given !== undefined && typeof given.ping === 'function' ? given : subConn

  // checks first, then patches: a shape error leaves the emitter untouched
  for (const event of MESSAGE_EVENTS) {
    if (subConn.listeners(event).length === 0) throw shapeError('mqemitter-redis', `no '${event}' listener on its subscriber connection`)
  }
  const parts: RedisEmitterParts = { subConn, pubConn, link, receivers: countReceivers(pubConn), hooks: { onGarbage () {}, onError () {} } }
  state.on('error', (err: unknown) => parts.hooks.onError(err))
  guardMessageHandlers(subConn, (channel, err) => parts.hooks.onGarbage(channel, err))
  guardQuit(subConn)
  guardQuit(pubConn)
  holdPubSubUntilReady(subConn, link)
  e[PARTS] = parts
  return parts
}

type Listener = ((...args: unknown[]) => void) & { [GUARDED]?: true }

/** mqemitter-redis' message handlers, re-attached behind a try/catch (they decode msgpack). */
function guardMessageHandlers (subConn: Redis, onGarbage: (channel: string, err: unknown) => void): void {
  for (const event of MESSAGE_EVENTS) {
    const channelArg = event === 'messageBuffer' ? 0 : 1
    for (const fn of subConn.listeners(event) as Listener[]) {
      if (fn[GUARDED]) continue
      const guarded: Listener = function (this: unknown, ...args: unknown[]) {
        try {
          fn.apply(this, args)
        } catch (err) {
          onGarbage(String(args[channelArg]), err)
        }
      }
      guarded[GUARDED] = true
      subConn.removeListener(event, fn)
      subConn.on(event, guarded)
    }
  }
}

/** QUIT's promise gets a handler: mqemitter-redis.close() calls quit() and drops the promise. */
function guardQuit (conn: Redis): void {
  const quit = conn.quit.bind(conn)
  conn.quit = ((...args: Parameters<Redis['quit']>) => {
    const p = quit(...args)
    p.catch(() => {})
    return p
  }) as Redis['quit']
}

/**
 * While the subscriber link is in its handshake (status 'connect'), (UN)SUBSCRIBE calls
 * wait, in order, and go out on 'ready' (or on 'close': the connection then queues them
 * itself until it is ready). ioredis 6 holds them by itself; ioredis 5 does not.
 */
function holdPubSubUntilReady (subConn: Redis, link: SubscriberLink): void {
  const held: Array<() => void> = []
  const handshaking = (): boolean => link.status === 'connect'
  const release = (): void => {
    while (held.length > 0 && !handshaking()) held.shift()!()
  }
  const conn = subConn as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  for (const name of PUBSUB_COMMANDS) {
    const send = conn[name]!.bind(subConn)
    conn[name] = (...args: unknown[]): Promise<unknown> => {
      if (held.length === 0 && !handshaking()) return send(...args)
      const later = new Promise<unknown>((resolve) => { held.push(() => resolve(send(...args))) })
      later.catch(() => {}) // a callback, when given, already receives the error
      return later
    }
  }
  link.on('ready', release)
  link.on('close', release)
}

/** Keeps what PUBLISH answered, for the caller of receivers(). */
function countReceivers (pubConn: Redis): RedisEmitterParts['receivers'] {
  // a Cluster's PUBLISH counts the subscribers of one node only: not a count of instances
  if ((pubConn as unknown as { isCluster?: unknown }).isCluster === true) {
    return (emit) => { emit(); return Promise.resolve(null) }
  }
  let capturing = false
  let captured: Promise<unknown> | null = null
  const conn = pubConn as unknown as { publish: (...args: unknown[]) => Promise<unknown> }
  const publish = conn.publish.bind(pubConn)
  conn.publish = (...args: unknown[]) => {
    const p = publish(...args)
    if (capturing) captured = p
    return p
  }
  return (emit) => {
    capturing = true
    captured = null
    try {
      emit()
    } finally {
      capturing = false
    }
    const p = captured as Promise<unknown> | null
    captured = null
    // no PUBLISH seen (a later mqemitter-redis that publishes asynchronously): count unknown
    if (p === null) return Promise.resolve(null)
    return p.then((n) => (typeof n === 'number' ? n : null), () => null)
  }
}
