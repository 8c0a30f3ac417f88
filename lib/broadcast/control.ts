// Cross-instance user commands: `app.wsx.sendToUser()` and `disconnectUser()` reach a
// user's connections on every instance. The requester publishes a request on the bus;
// every instance (itself included) acts on its own connections of that user and answers
// with an acknowledgement saying how many it reached; the requester adds them up.
//
// Pub/sub does not say how many instances there are. On Redis, PUBLISH answers how many
// subscribers got the request (one per instance), and that many acknowledgements are
// awaited; in process there is one instance. When the number is unknown (Redis Cluster
// counts one node only, a custom emitter), or an instance never answers (it died meanwhile),
// the request ends after CONTROL_WAIT_MS with the acknowledgements received by then.
import { randomUUID } from 'node:crypto'
import type { Bus } from './bus.js'
import type { Core } from '../instance/core.js'
import type { Connection } from '../connection/connection.js'

/** How long a request waits for acknowledgements, at most (ms). */
export const CONTROL_WAIT_MS = 300

/** Sends a request of `kind` to every instance; resolves how many connections they reached. */
export type ControlRequest = (kind: string, payload: Record<string, unknown>) => Promise<number>

export interface ControlOptions {
  /** instances other than this one may answer (the plugin has `redis`) */
  distributed: boolean
  /** the longest wait for acknowledgements (default CONTROL_WAIT_MS) */
  waitMs?: number
}

interface Pending {
  total: number
  acks: number
  /** acknowledgements to wait for; Infinity while (or when) not known */
  expected: number
  settle: () => void
}

/**
 * Subscribes this instance to the control commands and their acknowledgements (resolves
 * once the bus confirmed, or after its subscription timeout) and returns the requester.
 */
export async function startControl (core: Core, bus: Bus, opts: ControlOptions): Promise<ControlRequest> {
  const waitMs = opts.waitMs ?? CONTROL_WAIT_MS
  const pending = new Map<string, Pending>()

  const acknowledge = (req: unknown, n: number): Promise<void> =>
    bus.publishControl('ack', { req, n }).then(() => {}, (err: unknown) => {
      // the requester counts without it; said at debug level, as every failed publish is
      core.log.debug({ err }, 'wsx: control acknowledgement not sent')
    })

  await Promise.all([
    bus.onControl('ack', (p) => {
      const entry = pending.get(String(p.req))
      if (!entry) return // a late one: its request already answered
      entry.total += Number(p.n) || 0
      entry.acks++
      if (entry.acks >= entry.expected) entry.settle()
    }),
    bus.onControl('user-send', (p) => {
      const frame = String(p.frame)
      let n = 0
      for (const conn of core.byUser.get(String(p.user)) ?? []) if ((conn as unknown as Connection).sendRaw(frame)) n++
      return acknowledge(p.req, n)
    }),
    bus.onControl('user-close', (p) => {
      const n = core.disconnectUserLocally(String(p.user), Number(p.code), String(p.reason))
      return acknowledge(p.req, n)
    })
  ])

  return async (kind, payload) => {
    const req = randomUUID()
    let settle!: () => void
    const settled = new Promise<void>((resolve) => { settle = resolve })
    const entry: Pending = { total: 0, acks: 0, expected: Infinity, settle }
    pending.set(req, entry)
    let timer: NodeJS.Timeout | undefined
    try {
      const receivers = await bus.publishControl(kind, { ...payload, req })
      entry.expected = receivers ?? (opts.distributed ? Infinity : 1)
      // acknowledgements can come before PUBLISH's answer
      if (entry.acks < entry.expected) {
        timer = setTimeout(settle, waitMs)
        await settled
      }
      return entry.total
    } finally {
      clearTimeout(timer)
      pending.delete(req)
    }
  }
}
