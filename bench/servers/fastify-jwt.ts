// Peer "raw @fastify/websocket + @fastify/jwt": the raw peer with the demo's JWT check in
// an `onRequest` hook, the honest floor of an authenticated upgrade. Same secret, same
// verify options (HS256, `exp` required) and the same `POST /login` as the demo, so the
// load generator hands it the same kind of token.
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import fastifyJwt from '@fastify/jwt'
import type { AddressInfo } from 'node:net'
import { handleFrame, startHeartbeat } from './envelope.js'
import { startControl, failStart } from './control.js'

async function main (): Promise<void> {
  const secret = process.env.WSX_DEMO_SECRET
  if (secret === undefined || secret === '') throw new Error('WSX_DEMO_SECRET is not set (bench/lib/peers.ts sets it)')
  const app = Fastify({ logger: false })
  await app.register(fastifyJwt, { secret, sign: { algorithm: 'HS256', expiresIn: 3600 }, verify: { algorithms: ['HS256'], requiredClaims: ['exp'] } })
  await app.register(websocket, { options: { perMessageDeflate: false } })
  app.post('/login', async (request) => {
    const { username } = request.body as { username: string }
    return { token: app.jwt.sign({ sub: username, role: 'user' }) }
  })
  app.get('/ws', {
    websocket: true,
    onRequest: async (request, reply) => {
      try {
        await request.jwtVerify()
      } catch {
        return reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'Authentication failed.' })
      }
    }
  }, (socket) => {
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

main().catch((err: unknown) => failStart('fastifyJwt', err))
