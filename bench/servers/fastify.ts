// Peer "raw @fastify/websocket": Fastify 5 with @fastify/websocket and a plain handler
// running the shared envelope logic. No auth, no schemas: the floor fastify-wsx is
// compared against.
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { failStart } from './control.js'
import { listenRawPeer, rawEnvelopeRoute } from './raw-fastify.js'

async function main (): Promise<void> {
  const app = Fastify({ logger: false })
  await app.register(websocket, { options: { perMessageDeflate: false } })
  rawEnvelopeRoute(app)
  await listenRawPeer(app)
}

main().catch((err: unknown) => failStart('fastify', err))
