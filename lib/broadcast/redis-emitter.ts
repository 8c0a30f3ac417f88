// The cross-instance emitter on Redis (mqemitter-redis), built on connections of the
// plugin's own (see lib/redis/client.ts). Loaded only when the app configures `redis`.
import { EventEmitter } from 'node:events'
import MQEmitterRedis from 'mqemitter-redis'
import type { Redis } from 'ioredis'
import type { EmitterLike, SubscriberLink } from './bus.js'
import { createRedis } from '../redis/create.js'
import { isClusterClient } from '../redis/client.js'

/**
 * Builds a cross-instance emitter on Redis: a `bus` connection to subscribe and a `store`
 * connection to publish (fails fast during an outage instead of queueing).
 * Hand it to `new Bus({ emitter })`, which guards it and owns it (close() closes it).
 * `target` is a URL, ioredis options or an ioredis client (duplicated, never used itself).
 */
export function createRedisEmitter (target: string | object, namespace = 'wsx'): EmitterLike {
  const subConn = createRedis(target, { purpose: 'bus', connectionName: `${namespace}:bus:sub` })
  const pubConn = createRedis(target, { purpose: 'store', connectionName: `${namespace}:bus:pub` })
  const emitter = MQEmitterRedis({ subConn, pubConn }) as unknown as EmitterLike & { link?: SubscriberLink }
  if (isClusterClient(subConn as never)) emitter.link = new ClusterSubscriberLink(subConn)
  return emitter
}

const WATCH_INTERVAL_MS = 200

/**
 * On a Cluster, ioredis subscribes through one node connection of its own, which it
 * replaces (and re-subscribes) when that node goes away; the Cluster object itself says
 * nothing. The bus needs to know, since messages published meanwhile are lost: this link
 * follows the current subscriber connection and reports its 'close' and 'ready', and its
 * PING goes down that very connection (so it is answered after the re-SUBSCRIBEs).
 */
class ClusterSubscriberLink extends EventEmitter implements SubscriberLink {
  private current: Redis | null = null
  private readonly timer: NodeJS.Timeout
  private readonly onClose = (): void => { this.emit('close') }
  private readonly onReady = (): void => { this.emit('ready') }

  constructor (private readonly cluster: Redis) {
    super()
    this.timer = setInterval(() => { this.follow() }, WATCH_INTERVAL_MS)
    this.timer.unref()
    cluster.once('end', () => {
      clearInterval(this.timer)
      this.attach(null)
    })
  }

  get status (): string {
    return this.current?.status ?? 'wait'
  }

  ping (): Promise<unknown> {
    return this.current ? this.current.ping() : Promise.reject(new Error('no cluster subscriber connection'))
  }

  private follow (): void {
    const holder = (this.cluster as unknown as { subscriber?: { getInstance?: () => Redis | null } }).subscriber
    const next = holder?.getInstance?.() ?? null
    if (next === this.current) return
    const wasReady = this.current?.status === 'ready'
    this.attach(next)
    // the previous connection went away without a 'close' we saw: the link was down
    if (wasReady) this.emit('close')
    if (next?.status === 'ready') this.emit('ready')
  }

  private attach (next: Redis | null): void {
    this.current?.removeListener('close', this.onClose)
    this.current?.removeListener('ready', this.onReady)
    this.current = next
    next?.on('close', this.onClose)
    next?.on('ready', this.onReady)
  }
}
