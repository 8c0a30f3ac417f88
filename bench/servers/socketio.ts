// Peer "socket.io 4": events with acks, the websocket transport only (no polling), so
// it runs over the same kind of socket as the others. socket.io parses and serializes
// its own packets; the handlers only pass the data through.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from 'socket.io'
import { startControl, failStart } from './control.js'

type Ack = (reply: unknown) => void

async function main (): Promise<void> {
  const http = createServer()
  const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false })
  io.on('connection', (socket) => {
    socket.on('bench.echo', (data: unknown, ack: Ack) => {
      if (typeof ack === 'function') ack(data)
    })
    socket.on('bench.broadcast', (data: unknown, ack: Ack) => {
      io.emit('bench.tick', data)
      if (typeof ack === 'function') ack({ sent: true })
    })
  })
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject)
    http.listen(0, '127.0.0.1', resolve)
  })
  startControl({ port: (http.address() as AddressInfo).port, connections: () => io.engine.clientsCount })
}

main().catch((err: unknown) => failStart('socketio', err))
