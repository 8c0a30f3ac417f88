// On a Cluster, ioredis subscribes through one node connection of its own, which it
// replaces (and re-subscribes) when that node goes away; the Cluster object itself says
// nothing. The bus needs to know, since messages published meanwhile are lost: this link
// follows the current subscriber connection and reports its 'close' and 'ready', and its
// PING goes down that very connection (so it is answered after the re-SUBSCRIBEs).
// ioredis declares none of this: `subscriber.getInstance()` is checked at boot.
import { EventEmitter } from 'node:events'
import type { Redis } from 'ioredis'
import type { SubscriberLink } from '../broadcast/link-monitor.js'
import { errors } from '../errors.js'

const WATCH_INTERVAL_MS = 200

interface SubscriberHolder { getInstance (): Redis | null | undefined }

/** The Cluster's subscriber holder; throws WSX_ERR_REDIS_INTERNALS when it is not there. */
function subscriberOf (cluster: Redis): SubscriberHolder {
  const holder = (cluster as unknown as { subscriber?: Partial<SubscriberHolder> }).subscriber
  if (typeof holder?.getInstance !== 'function') throw new errors.WSX_ERR_REDIS_INTERNALS('ioredis Cluster', 'no subscriber.getInstance()')
  return holder as SubscriberHolder
}

export class ClusterSubscriberLink extends EventEmitter implements SubscriberLink {
  private current: Redis | null = null
  private readonly holder: SubscriberHolder
  private readonly timer: NodeJS.Timeout
  private readonly onClose = (): void => { this.emit('close') }
  private readonly onReady = (): void => { this.emit('ready') }

  constructor (cluster: Redis) {
    super()
    this.holder = subscriberOf(cluster)
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
    const next = this.holder.getInstance() ?? null
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
