// Whether the Redis behind the bus can be trusted right now, and when it is back. Pub/sub
// loses whatever is published while a subscriber is away, so the bus must know when its
// links go down (to refuse publishing instead of pretending) and when they are back (to
// tell the groups they may have missed something: `socket.resync`,
// README.md#delivery-and-recovery). A socket that closes says so; a frozen Redis keeps its sockets open and says
// nothing, so the subscriber link is also probed with a PING.
import type { BusLogger } from './bus.js'

/**
 * The subscriber link whose health is followed: the subscriber connection itself, or (Redis
 * Cluster) lib/redis/cluster-link.ts, which follows the node connection the cluster
 * subscribes through. Emits 'close' and 'ready'; its PING travels behind the subscriptions.
 */
export interface SubscriberLink {
  readonly status: string
  ping (): Promise<unknown>
  on (event: 'close' | 'ready', listener: () => void): unknown
  removeListener (event: 'close' | 'ready', listener: () => void): unknown
}

/** The publishing connection: only its readiness matters here. */
export interface PublisherLink {
  readonly status: string
  on (event: 'ready', listener: () => void): unknown
  removeListener (event: 'ready', listener: () => void): unknown
}

export interface LinkMonitorOptions {
  subscriber: SubscriberLink
  publisher: PublisherLink
  /** how long a PING may go unanswered before the link counts as down */
  pingTimeoutMs: number
  /** how often the subscriber link is probed; `0` disables probing */
  probeIntervalMs: number
  log: BusLogger
  /** both links are up again after a loss: whatever was subscribed may have missed messages */
  onBack: () => void
}

/**
 * Sends a PING on `link`. `inTime` resolves true if it was answered within `ms`, false on
 * a timeout or an error; `settled` resolves once the PING itself is answered or failed
 * (a PING that timed out stays queued on the link, and its late answer still comes).
 */
export function pingWithin (link: SubscriberLink, ms: number): { inTime: Promise<boolean>, settled: Promise<void> } {
  let timer: NodeJS.Timeout | undefined
  const answered = link.ping().then(() => true, () => false)
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(resolve, ms, false)
    timer.unref()
  })
  const inTime = Promise.race([answered, timeout]).finally(() => clearTimeout(timer))
  return { inTime, settled: answered.then(() => {}) }
}

export class LinkMonitor {
  private readonly subscriber: SubscriberLink
  private readonly publisher: PublisherLink
  private readonly pingTimeoutMs: number
  private readonly log: BusLogger
  private readonly onBack: () => void
  /** the subscriber link is up and its subscriptions are confirmed */
  private subReady: boolean
  /** the link went down after having been up (or a subscription was late): resync once back */
  private missed = false
  /** bumps on every link transition, so a slow readiness PING cannot undo a newer close */
  private generation = 0
  private outageErrors = 0
  private probeTimer: NodeJS.Timeout | null = null
  private probing = false
  private closed = false
  private readonly onSubscriberClose = (): void => { this.subscriberDown() }
  private readonly onSubscriberReady = (): void => { this.confirmSubscriberUp() }
  private readonly onPublisherReady = (): void => { this.backIfUp() }

  constructor (opts: LinkMonitorOptions) {
    this.subscriber = opts.subscriber
    this.publisher = opts.publisher
    this.pingTimeoutMs = opts.pingTimeoutMs
    this.log = opts.log
    this.onBack = opts.onBack
    this.subscriber.on('close', this.onSubscriberClose)
    this.subscriber.on('ready', this.onSubscriberReady)
    this.publisher.on('ready', this.onPublisherReady)
    this.subReady = this.subscriber.status === 'ready'
    if (opts.probeIntervalMs > 0) {
      this.probeTimer = setInterval(() => { this.probe() }, opts.probeIntervalMs)
      this.probeTimer.unref()
    }
  }

  /**
   * false while the backend is unreachable: subscriber link down or not yet confirmed, or
   * publisher link down. A frozen Redis counts as down once a probe went unanswered.
   */
  get up (): boolean {
    return !this.closed && this.subReady && this.publisher.status === 'ready'
  }

  /** Something may have been missed while down: the groups are resynced once the links are back. */
  noteMissed (): void {
    this.missed = true
  }

  /** A backend error: the first of an outage is worth a warning; ioredis repeats it on every retry. */
  backendError (err: unknown): void {
    if (this.outageErrors++ === 0) this.log.warn({ err }, 'wsx bus: backend error')
    else this.log.debug({ err }, 'wsx bus: backend error')
  }

  close (): void {
    this.closed = true
    if (this.probeTimer) clearInterval(this.probeTimer)
    this.subscriber.removeListener('close', this.onSubscriberClose)
    this.subscriber.removeListener('ready', this.onSubscriberReady)
    this.publisher.removeListener('ready', this.onPublisherReady)
  }

  private subscriberDown (): void {
    this.generation++
    if (this.closed || !this.subReady) return
    this.subReady = false
    this.missed = true
    this.log.warn({}, 'wsx bus: subscriber link lost; publish fails until it is back')
  }

  /**
   * ioredis says 'ready' right after writing the re-SUBSCRIBE commands, before Redis
   * answered them. A PING on the same connection is answered after them, so once it is
   * back every subscription is in place and a resync cannot race a still-missing one.
   */
  private confirmSubscriberUp (): void {
    if (this.closed) return
    const generation = ++this.generation
    pingWithin(this.subscriber, this.pingTimeoutMs).inTime.then((answered) => {
      if (this.closed || generation !== this.generation) return
      if (!answered) this.log.warn({}, 'wsx bus: subscriber link ready but PING unanswered')
      this.subReady = true
      this.backIfUp()
    }, () => {})
  }

  /**
   * One PING at a time on the subscriber link. Unanswered in time: the link is down (a
   * frozen Redis), whatever the socket says; answered again later: it is back, and the
   * groups are resynced, since anything published meanwhile may be lost.
   */
  private probe (): void {
    if (this.closed || this.probing || this.subscriber.status !== 'ready') return
    this.probing = true
    const generation = this.generation
    const ping = pingWithin(this.subscriber, this.pingTimeoutMs)
    ping.inTime.then((answered) => {
      if (this.closed) return
      if (!answered) {
        if (this.subReady) {
          this.subReady = false
          this.missed = true
          this.log.warn({}, 'wsx bus: backend stopped answering; publish fails until it is back')
        }
        // the PING stays queued on the link: its late answer ends the probe
        ping.settled.then(() => { this.probing = false }, () => { this.probing = false })
        return
      }
      this.probing = false
      if (!this.subReady && generation === this.generation) {
        this.subReady = true
        this.backIfUp()
      }
    }, () => { this.probing = false })
  }

  /** Once both links are back after a loss, the caller resyncs, once. */
  private backIfUp (): void {
    if (!this.up) return
    this.outageErrors = 0
    if (!this.missed) return
    this.missed = false
    this.log.warn({}, 'wsx bus: backend link back; resyncing groups')
    this.onBack()
  }
}
