// Peer "raw @fastify/websocket": Fastify 5 with @fastify/websocket and a plain handler
// running the shared envelope logic. No auth, no schemas: the floor fastify-wsx is
// compared against.
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import type { AddressInfo } from 'node:net'
import { handleFrame, startHeartbeat } from './envelope.js'
import { startControl, failStart } from './control.js'

async function main (): Promise<void> {
  const app = Fastify({ logger: false })
  await app.register(websocket, { options: { perMessageDeflate: false } })
  app.get('/ws', { websocket: true }, (socket) => {
    socket.on('message', (raw: Buffer, isBinary: boolean) => {
      if (isBinary) { socket.close(1003); return }
      handleFrame(socket, raw.toString(), () => app.websocketServer.clients)
    })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  startHeartbeat(() => app.websocketServer.clients)
  const port = (app.server.address() as AddressInfo).port
  startControl({ port, connections: () => app.websocketServer.clients.size })
}

main().catch((err: unknown) => failStart('fastify', err))
