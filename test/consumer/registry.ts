// The app-wide registry (its own program: augmentations are global). `events` points at the
// schemas the route already declares, so they are written once.
import Fastify from 'fastify'
import wsx, { Type, action } from 'fastify-wsx'

export const chatEvents = {
  'chat.message': Type.Object({ user: Type.String(), text: Type.String() })
}

declare module 'fastify-wsx' {
  interface WsxRegistry {
    user: { sub: string, role: 'admin' | 'user' }
    events: typeof chatEvents
  }
}

const app = Fastify()
await app.register(wsx)

await app.wsx.broadcast('room:general', 'chat.message', { user: 'a', text: 'hi' })
// @ts-expect-error wrong event payload
await app.wsx.broadcast('room:general', 'chat.message', { text: 123 })
// @ts-expect-error unknown event
await app.wsx.sendToUser('alice', 'chat.mesage', { user: 'a', text: 'b' })

action({
  handler: async (_msg, conn) => {
    const role: 'admin' | 'user' = conn.user.role
    conn.send('chat.message', { user: conn.user.sub, text: role })
    // @ts-expect-error unknown event
    conn.send('chat.mesage', { user: 'a', text: 'b' })
  }
})
