// The demo's pages: the chat page at `/` (plain files in ./public), the playground and the
// AsyncAPI document. Kept apart from app.ts so the app's logic stays on one screen.
import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import { wsxAsyncApi } from '../../plugins/asyncapi.js'
import { wsxPlayground } from '../../plugins/playground.js'

const publicDir = new URL('./public/', import.meta.url)

/** Read once at boot: the files are tiny and never change while the demo runs. */
function asset (name: string): Buffer {
  return readFileSync(new URL(name, publicDir))
}

/** Registers `GET /`, `GET /chat.js`, the playground and `/wsx/asyncapi.json` (+ `.yaml`). */
export async function registerPages (app: FastifyInstance): Promise<void> {
  const html = asset('index.html')
  const script = asset('chat.js')
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(html))
  app.get('/chat.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(script))
  await app.register(wsxAsyncApi, {
    yamlPath: '/wsx/asyncapi.yaml',
    info: { title: 'fastify-wsx chat demo', version: '1.0.0', description: 'The chat demo of fastify-wsx (examples/chat).' }
  })
  // the playground refuses production by design: the demo leaves it out there rather than override
  if (process.env.NODE_ENV !== 'production') await app.register(wsxPlayground)
}
