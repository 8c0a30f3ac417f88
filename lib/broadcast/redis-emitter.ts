// The cross-instance emitter on Redis (mqemitter-redis), built on connections of the
// plugin's own (see lib/redis/client.ts). Loaded only when the app configures `redis`.
import MQEmitterRedis from 'mqemitter-redis'
import type { WsxEmitter } from '../../types/options.js'
import type { SubscriberLink } from './link-monitor.js'
import { createRedis } from '../redis/create.js'
import { isClusterClient } from '../redis/client.js'
import { ClusterSubscriberLink } from '../redis/cluster-link.js'
import { patchRedisEmitter } from '../redis/emitter-patches.js'

/**
 * Builds a cross-instance emitter on Redis: a `bus` connection to subscribe and a `store`
 * connection to publish (fails fast during an outage instead of queueing).
 * Patched at once (lib/redis/emitter-patches.ts); hand it to `new Bus({ emitter })`, which
 * owns it (close() closes it).
 * `target` is a URL, ioredis options or an ioredis client (duplicated, never used itself).
 */
export function createRedisEmitter (target: string | object, namespace = 'wsx'): WsxEmitter {
  const subConn = createRedis(target, { purpose: 'bus', connectionName: `${namespace}:bus:sub` })
  const pubConn = createRedis(target, { purpose: 'store', connectionName: `${namespace}:bus:pub` })
  const emitter = MQEmitterRedis({ subConn, pubConn }) as unknown as WsxEmitter & { link?: SubscriberLink }
  try {
    if (isClusterClient(subConn as never)) emitter.link = new ClusterSubscriberLink(subConn)
    patchRedisEmitter(emitter)
  } catch (err) {
    // WSX_ERR_REDIS_INTERNALS: these connections must not keep the process alive
    subConn.disconnect()
    pubConn.disconnect()
    throw err
  }
  return emitter
}
