// Peer "raw @fastify/websocket + @fastify/jwt": the raw peer with the demo's JWT check in
// an `onRequest` hook, the honest floor of an authenticated upgrade. Same secret, same
// verify options (HS256, `exp` required) and the same `POST /login` as the demo, so the
// load generator hands it the same kind of token.
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import fastifyJwt from '@fastify/jwt'
import { failStart } from './control.js'
import { listenRawPeer, rawEnvelopeRoute } from './raw-fastify.js'

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
  rawEnvelopeRoute(app, async (request, reply) => {
    try {
      await request.jwtVerify()
    } catch {
      return reply.code(401).send({ statusCode: 401, error: 'Unauthorized', message: 'Authentication failed.' })
    }
  })
  await listenRawPeer(app)
}

main().catch((err: unknown) => failStart('fastifyJwt', err))
