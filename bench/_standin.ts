// TEMPORARY stand-in for examples/chat/app.ts to exercise the bench's wsx path. Deleted after.
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import jwt from '@fastify/jwt'
import mqemitterRedis from 'mqemitter-redis'
import mqemitter from 'mqemitter'

export async function buildDemo (opts: { logger?: boolean } = {}) {
  const app = Fastify({ logger: opts.logger ?? false })
  await app.register(jwt, { secret: process.env.WSX_DEMO_SECRET ?? 'dev' })
  await app.register(websocket)
  const url = process.env.WSX_DEMO_REDIS_URL
  const mq: any = url ? (mqemitterRedis as any)({ connectionString: url }) : (mqemitter as any)()
  if (url) mq.state.on('error', () => {})
  const members = new Set<any>()
  mq.on('bench', (msg: any, cb: () => void) => { const f = Buffer.from(msg.frame); for (const s of members) s.send(f, { binary: false }); cb() })
  app.post('/login', async (req) => ({ token: app.jwt.sign({ sub: (req.body as any).username, role: 'user' }, { expiresIn: 3600 }) }))
  app.register(async (scope) => {
    scope.addHook('onRequest', async (req, reply) => { try { await req.jwtVerify() } catch { return reply.code(401).send({}) } })
    scope.get('/ws/bench', { websocket: true }, (socket) => {
      members.add(socket)
      socket.on('close', () => members.delete(socket))
      socket.send(JSON.stringify({ action: 'socket.authorized', data: { authenticated: true, via: 'upgrade' } }))
      socket.on('message', (raw: Buffer) => {
        const m = JSON.parse(raw.toString())
        if (m.action === 'bench.echo') socket.send(JSON.stringify({ id: m.id, ok: true, data: m.data }))
        else { mq.emit({ topic: 'bench', frame: JSON.stringify({ action: 'bench.tick', data: m.data }) }); socket.send(JSON.stringify({ id: m.id, ok: true, data: { sent: true } })) }
      })
    })
  })
  return app
}
