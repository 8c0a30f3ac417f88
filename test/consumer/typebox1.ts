// TypeBox 1.x (the `typebox` package, used by @fastify/type-provider-typebox 6): its schemas
// type actions, params and events exactly like the re-exported `Type` (@sinclair/typebox 0.34).
import Fastify, { type FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import wsx, { Type as Type034 } from 'fastify-wsx'
import { createClient } from 'fastify-wsx/client'

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assertType<T extends true> (_ok?: T): void {}

const app = Fastify()
await app.register(wsx)
const authenticate = async (request: FastifyRequest): Promise<void> => { if (request.headers.authorization === undefined) throw new Error('no token') }

const Note = Type.Object({ id: Type.Integer(), body: Type.String(), tags: Type.Optional(Type.Array(Type.String())) })

export const notes = app.wsx.route({
  url: '/ws/notes/:board',
  schema: { params: Type.Object({ board: Type.String() }) },
  authenticate: [authenticate],
  events: { 'note.added': Note },
  actions: (action) => ({
    'note.add': action({
      request: Type.Object({ body: Type.String({ minLength: 1 }) }),
      response: Note,
      handler: async (msg, conn) => {
        assertType<Equals<typeof msg.data, { body: string }>>()
        assertType<Equals<typeof conn.params, { board: string }>>()
        const note = { id: 1, body: msg.data.body }
        conn.send('note.added', note)
        // @ts-expect-error wrong event payload
        conn.send('note.added', { id: 'x', body: 1 })
        return note
      }
    }),
    // both lines in one route
    'note.count': action({
      response: Type034.Object({ count: Type034.Integer() }),
      // @ts-expect-error wrong reply shape
      handler: async () => ({ count: 'many' })
    })
  })
})

const client = createClient<typeof notes>('ws://127.0.0.1:3000/ws/notes/general')
export const added = await client.request('note.add', { body: 'hi' })
assertType<Equals<typeof added, { id: number, body: string, tags?: string[] }>>()
// @ts-expect-error wrong field
await client.request('note.add', { text: 'hi' })
client.on('note.added', (note) => { assertType<Equals<typeof note.id, number>>() })
