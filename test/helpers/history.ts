// Shared by the history tests: an app with history groups and channels, and the steps a
// client takes (join and answer group.joined, drop with a TCP reset).
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { Type, action, defineChannel } from '../../index.js'
import { connect, type Frame, type TestClient } from '../../testing/index.js'
import { build, tokenFor, verifyJwt } from './build.js'
import type { WsxPluginOptions } from '../../types/options.js'

export async function historyApp (t: Test, wsx: WsxPluginOptions = {}): Promise<FastifyInstance> {
  const app = await build(t, { wsx: { messageRateLimit: false, ...wsx } })
  app.wsx.group('room:*', { history: { size: 100, ttl: '5m' } })
  app.wsx.group('small:*', { history: { size: 10, ttl: '5m' } })
  app.wsx.route({
    url: '/ws/:kind/:room',
    authenticate: [verifyJwt],
    groups: (conn) => `${String(conn.params.kind)}:${String(conn.params.room)}`,
    channels: {
      feed: defineChannel({ params: Type.Object({ topic: Type.String({ pattern: '^[a-z]+$' }) }), history: { size: 100, ttl: '5m' } }),
      plain: defineChannel({ params: Type.Object({ topic: Type.String({ pattern: '^[a-z]+$' }) }) })
    },
    actions: {
      'chat.send': action({
        request: Type.Object({ n: Type.Integer() }),
        async handler (msg, conn) {
          await this.wsx.broadcast(`${String(conn.params.kind)}:${String(conn.params.room)}`, 'chat.message', { n: msg.data.n }, { exclude: conn })
          return { sent: true }
        }
      })
    }
  })
  await app.ready()
  return app
}

/** Connects, authenticates at the upgrade and answers group.joined like the typed client does. */
export async function joinRoom (app: FastifyInstance, path: string, user: string, position?: { offset: number, epoch: string }): Promise<{ client: TestClient, joined: Frame, reply: Frame }> {
  const client = await connect(app, path, { token: tokenFor(app, user) })
  await client.next('socket.authorized')
  const joined = await client.next('group.joined', 5000)
  const data = joined.data as { group: string, epoch: string, offset: number }
  const reply = await client.request('group.recover', { group: data.group, ...(position ?? { offset: data.offset, epoch: data.epoch }) })
  return { client, joined, reply }
}

/** A TCP reset: no close frame, the server learns it from the socket. */
export function resetConnection (client: TestClient): void {
  const tcp = (client.ws as unknown as { _socket: { resetAndDestroy: () => void } })._socket
  tcp.resetAndDestroy()
}

export function chatFrames (client: TestClient): Frame[] {
  return client.frames.filter((f) => f.action === 'chat.message')
}
