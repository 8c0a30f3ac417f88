// What both raw @fastify/websocket peers share: the `/ws` route running the bench's plain
// envelope logic, and listening with the heartbeat and the control channel. The peers
// differ only in what runs before the upgrade.
import type { FastifyInstance, onRequestHookHandler } from 'fastify'
import type { AddressInfo } from 'node:net'
import { handleFrame, startHeartbeat } from './envelope.js'
import { startControl } from './control.js'

/** `GET /ws`: text frames through the shared envelope logic, binary frames closed 1003. */
export function rawEnvelopeRoute (app: FastifyInstance, onRequest?: onRequestHookHandler): void {
  app.get('/ws', { websocket: true, ...(onRequest ? { onRequest } : {}) }, (socket) => {
    socket.on('message', (raw: Buffer, isBinary: boolean) => {
      if (isBinary) { socket.close(1003); return }
      handleFrame(socket, raw.toString(), () => app.websocketServer.clients)
    })
  })
}

/** Listens on a free port, pings every client like the other peers, and reports to the runner. */
export async function listenRawPeer (app: FastifyInstance): Promise<void> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  startHeartbeat(() => app.websocketServer.clients)
  const port = (app.server.address() as AddressInfo).port
  startControl({ port, connections: () => app.websocketServer.clients.size })
}
