// fastify-wsx: the root plugin reads like a table of contents — check options, build the
// shared objects (bus, stores, core), register what it depends on, decorate `wsx`, and
// hook into the server's shutdown.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { Redis } from 'ioredis'
import { buildConfig } from './lib/boot/config.js'
import { errors } from './lib/errors.js'
import { Core } from './lib/instance/core.js'
import { Bus } from './lib/broadcast/bus.js'
import { startControl } from './lib/broadcast/control.js'
import { GroupRegistry } from './lib/broadcast/groups.js'
import { createLimiter, createLockout } from './lib/security/stores/index.js'
import { checkRedisInput, closeRedis, waitForRedis } from './lib/redis/client.js'
import { MemoryPresence, RedisPresence } from './lib/broadcast/presence.js'
import { MemoryHistory, type HistoryStore } from './lib/broadcast/history.js'
import { RedisHistory } from './lib/broadcast/history-redis.js'
import { drainConnections } from './lib/instance/shutdown.js'
import { eventFrame } from './lib/connection/envelope.js'
import { ServerEvent } from './protocol/index.js'
import { WsxFacade, type WsxShared } from './lib/instance/facade.js'
import { selectSubprotocol, upgradeGuard } from './lib/upgrade/hooks.js'
import { assertFrameworkShapes } from './lib/fastify/internals.js'
import type { Connection } from './lib/connection/connection.js'
import type { WsxEmitter, WsxPluginOptions } from './types/options.js'
import './types/fastify.js'

const OUTAGE_LOG_INTERVAL_MS = 10_000

/**
 * One warning when Redis becomes unreachable (and at most one per interval while it
 * stays so: ioredis reports an error on every reconnection attempt), one line when it is
 * back. The rest goes to debug.
 */
function redisOutageLog (log: FastifyInstance['log']) {
  let down = false
  let lastWarn = 0
  return {
    error (err: Error): void {
      const now = Date.now()
      if (!down || now - lastWarn >= OUTAGE_LOG_INTERVAL_MS) {
        lastWarn = now
        log.warn({ err }, 'wsx: Redis is unreachable; upgrades get 503, throttles and handshake locks fail closed until it is back')
      } else {
        log.debug({ err }, 'wsx: Redis store error')
      }
      down = true
    },
    ready (): void {
      if (down) log.info('wsx: Redis is reachable again')
      down = false
    }
  }
}

/** Opens the plugin's own Redis connections when `redis` is set (loads ioredis only then). */
async function openRedisIfSet (opts: WsxPluginOptions, namespace: string, log: FastifyInstance['log']): Promise<{ store?: Redis, emitter?: WsxEmitter }> {
  if (opts.redis === undefined) return {}
  const check = checkRedisInput(opts.redis)
  for (const warning of check.warnings) log.warn(`wsx: ${warning}`)
  const outage = redisOutageLog(log)
  const { openRedis } = await import('./lib/redis/setup.js')
  const { store, emitter } = openRedis(opts.redis, { namespace, withEmitter: opts.emitter === undefined, onStoreError: (err) => outage.error(err) })
  store.on('ready', () => outage.ready())
  // the store client has no offline queue: until it connects, throttles and locks fail closed
  if (!await waitForRedis(store)) outage.error(new Error(`no connection to Redis (${check.form}) at boot`))
  return { store, ...(emitter && { emitter }) }
}

const wsxPlugin: FastifyPluginAsync<WsxPluginOptions> = async function wsx (fastify, opts) {
  const config = buildConfig(opts)
  // @fastify/websocket's own preClose closes every socket with no code (1005) and a hook
  // cannot run before one registered earlier, so the drain works only when we register it;
  // checked before anything (Redis clients) is created
  if (fastify.hasDecorator('websocketServer')) throw new errors.WSX_ERR_WEBSOCKET_REGISTERED()
  assertFrameworkShapes(fastify)
  const log = fastify.log.child({ plugin: 'fastify-wsx' })
  // store failures are told by the store client's own 'error' events (redisOutageLog)
  const onStoreError = (err: Error) => log.debug({ err }, 'wsx: Redis store command failed')

  const { store: storeRedis, emitter: redisEmitter } = await openRedisIfSet(opts, config.namespace, log)
  const emitter = opts.emitter ?? redisEmitter
  let bus: Bus
  try {
    bus = new Bus({ ...(emitter && { emitter }), namespace: config.namespace, log })
  } catch (err) {
    // WSX_ERR_REDIS_INTERNALS from the app's own mqemitter-redis: our store connection must not keep the process alive
    if (storeRedis) await closeRedis(storeRedis)
    throw err
  }
  const groups = new GroupRegistry(bus, config.maxGroupsPerConnection)
  const limiter = createLimiter({ ...(storeRedis && { redis: storeRedis }), namespace: config.namespace, onError: onStoreError })
  const lockout = createLockout({ ...(storeRedis && { redis: storeRedis }), namespace: config.namespace, onError: onStoreError })
  const core = new Core(config, log, { groups, limiter, lockout })
  const presence = config.presenceTracked === null
    ? null
    : storeRedis
      ? new RedisPresence(storeRedis, { namespace: config.namespace, instanceId: core.instanceId, log })
      : new MemoryPresence()
  core.presence = presence

  // history needs offsets to travel with frames: the built-in bus (memory or mqemitter-redis)
  const historyStore: HistoryStore | null = opts.emitter !== undefined
    ? null
    : storeRedis
      ? new RedisHistory(storeRedis, { namespace: config.namespace, topicOf: (group) => bus.topicOf(group) })
      : new MemoryHistory((group, frame, meta) => bus.publish(group, frame, meta))
  core.historyStore = historyStore
  if (historyStore) groups.history = { store: historyStore, onLost: (lost) => sendResync(core, lost) }

  // sendToUser / disconnectUser across instances, counted from their acknowledgements
  const request = await startControl(core, bus, { distributed: storeRedis !== undefined })
  const shared: WsxShared = { core, bus, routes: [], channels: new Map(), request }
  // groups with history heal themselves from it; the others (and uncovered gaps) resync
  bus.onResync((affected) => sendResync(core, groups.healAll(affected)))

  await fastify.register(websocket, {
    ...opts.websocket,
    options: {
      maxPayload: config.maxPayload,
      perMessageDeflate: false,
      // wsx.v1.msgpack where the route opted in, wsx.v1 when offered, nothing otherwise
      handleProtocols: selectSubprotocol,
      ...(opts.websocket?.options as object | undefined)
    },
    preClose: function (this: FastifyInstance, done: (err?: Error) => void) {
      // drainConnections logs its report ("wsx: connections drained") once, itself
      drainConnections(core, { wss: this.websocketServer, http: this.server }).then(() => {
        this.websocketServer.close(() => done())
      }, done)
    }
  })
  // origin, capacity and connection rate for every wsx route, before any hook of the app
  fastify.addHook('onRequest', upgradeGuard(core))

  const facades = new WeakMap<FastifyInstance, WsxFacade>()
  fastify.decorate('wsx', {
    getter (this: FastifyInstance) {
      let facade = facades.get(this)
      if (!facade) facades.set(this, facade = new WsxFacade(this, shared))
      return facade
    }
  })

  fastify.addHook('onClose', async () => {
    await bus.close()
    await historyStore?.close()
    await presence?.close()
    await limiter.close()
    await lockout.close()
    if (storeRedis) await closeRedis(storeRedis)
  })
}

/** After a bus outage: each affected connection learns once which groups may have gaps. */
function sendResync (core: Core, affected: string[]): void {
  if (affected.length === 0) return
  const perConnection = new Map<Connection, string[]>()
  for (const group of affected) {
    for (const member of core.groups.localMembers(group)) {
      const conn = member as unknown as Connection
      const list = perConnection.get(conn) ?? []
      list.push(group)
      perConnection.set(conn, list)
    }
  }
  for (const [conn, list] of perConnection) conn.sendRaw(eventFrame(ServerEvent.resync, { groups: list }))
}

/**
 * fastify-wsx: DRF-style WebSocket actions for Fastify.
 * @example await app.register(wsx)
 */
const wsx = fp(wsxPlugin, { fastify: '5.x', name: 'fastify-wsx' })
export default wsx
export { wsx }

export { Type } from '@sinclair/typebox'
export type { Static, TSchema } from '@sinclair/typebox'
export { WsxError, errors } from './lib/errors.js'
export { CloseCode, ErrorCode, BuiltinAction, ServerEvent, SUBPROTOCOL, MSGPACK_SUBPROTOCOL } from './protocol/index.js'
export { handshakeOnly } from './lib/fastify/hook-runner.js'
export { isAuthenticated, hasRole, hasScope, allOf, anyOf } from './lib/security/permissions.js'
export { action, defineRoute, defineChannel } from './lib/boot/define.js'
export { WsxSocket, SocketClosedError } from './lib/connection/low-level-socket.js'
export type { WsxFacade, HistorySnapshot } from './lib/instance/facade.js'
export { wsxAsyncApi } from './plugins/asyncapi.js'
export { wsxPlayground } from './plugins/playground.js'
export type * from './types/index.js'
