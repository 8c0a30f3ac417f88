// The README quickstart, type-checked with the project: `npm run build && npx tsx examples/quickstart.ts`.
import Fastify, { type FastifyRequest } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import wsx, { Type } from 'fastify-wsx'

declare module 'fastify' {
  interface FastifyInstance { authenticate: (request: FastifyRequest) => Promise<void> }
}

const app = Fastify({ logger: true })
await app.register(fastifyJwt, {
  secret: process.env.JWT_SECRET ?? 'change-me-change-me-change-me-32',
  verify: { algorithms: ['HS256'], requiredClaims: ['exp'] }
})
// the app's existing HTTP strategy
app.decorate('authenticate', async (request: FastifyRequest) => { await request.jwtVerify() })
await app.register(wsx)

app.register(async (scope) => {
  scope.wsx.route({
    url: '/ws/chat/:room',
    schema: { params: Type.Object({ room: Type.String({ pattern: '^[a-z0-9-]{1,32}$' }) }) },
    authenticate: [scope.authenticate], // the very function the HTTP routes use
    events: { 'chat.message': Type.Object({ room: Type.String(), user: Type.String(), text: Type.String() }) },
    groups: (conn) => `room:${conn.params.room}`, // joined once authenticated
    actions: (action) => ({
      'public.ping': action({ public: true, handler: async () => ({ pong: true }) }),
      'chat.send': action({
        request: Type.Object({ text: Type.String({ minLength: 1, maxLength: 4000 }) }),
        response: Type.Object({ room: Type.String(), user: Type.String(), text: Type.String() }),
        handler: async (msg, conn) => {
          const message = { room: conn.params.room, user: conn.user.sub, text: msg.data.text }
          await scope.wsx.broadcast(`room:${conn.params.room}`, 'chat.message', message, { exclude: conn })
          return message
        }
      })
    })
  })
}, { prefix: '/api' })

await app.listen({ port: Number(process.env.PORT ?? 3000) })
