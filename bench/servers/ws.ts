// Peer "raw ws": a bare `ws` WebSocketServer with the shared envelope logic.
import { WebSocketServer, type WebSocket } from 'ws'
import type { AddressInfo } from 'node:net'
import { handleFrame } from './envelope.js'
import { startControl, failStart } from './control.js'

async function main (): Promise<void> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false })
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve)
    wss.once('error', reject)
  })
  const everyone = (): Iterable<WebSocket> => wss.clients
  wss.on('connection', (socket) => {
    socket.on('message', (raw, isBinary) => {
      if (isBinary) { socket.close(1003); return }
      handleFrame(socket, raw.toString(), everyone)
    })
  })
  startControl({ port: (wss.address() as AddressInfo).port, connections: () => wss.clients.size })
}

main().catch((err: unknown) => failStart('ws', err))
