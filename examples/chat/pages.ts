// The demo's pages: the chat page at `/` (./public), the playground and the AsyncAPI
// document. The page script and the typed client are TypeScript; they are transpiled for
// the browser once at boot (no bundler, no build step: their imports are relative `.js`).
import { readFileSync, readdirSync } from 'node:fs'
import ts from 'typescript'
import type { FastifyInstance } from 'fastify'
import { wsxAsyncApi } from '../../plugins/asyncapi.js'
import { wsxPlayground } from '../../plugins/playground.js'

const publicDir = new URL('./public/', import.meta.url)
// the client and the wire names it imports from protocol/, served at /client/ and /protocol/
const moduleDirs = { client: new URL('../../client/', import.meta.url), protocol: new URL('../../protocol/', import.meta.url) }

/** TypeScript → browser ESM; the client's `../../../client/` import is rewritten to `/client/`. */
function browserModule (file: URL): string {
  const source = readFileSync(file, 'utf8')
  const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } })
  return outputText.replace(/(['"])(?:\.\.\/)+client\//g, '$1/client/')
}

/** Registers `GET /`, `GET /chat.js`, `GET /client/*.js`, `GET /protocol/*.js`, the playground and `/wsx/asyncapi.json` (+ `.yaml`). */
export async function registerPages (app: FastifyInstance): Promise<void> {
  const html = readFileSync(new URL('index.html', publicDir))
  const script = browserModule(new URL('chat.ts', publicDir))
  const js = 'text/javascript; charset=utf-8'
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(html))
  app.get('/chat.js', async (_request, reply) => reply.type(js).send(script))
  for (const [prefix, dir] of Object.entries(moduleDirs)) {
    const modules = new Map<string, string>()
    for (const name of readdirSync(dir)) {
      if (name.endsWith('.ts')) modules.set(name.replace(/\.ts$/, '.js'), browserModule(new URL(name, dir)))
    }
    app.get<{ Params: { file: string } }>(`/${prefix}/:file`, async (request, reply) => {
      const body = modules.get(request.params.file)
      if (body === undefined) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'No such module.' })
      return reply.type(js).send(body)
    })
  }
  await app.register(wsxAsyncApi, {
    yamlPath: '/wsx/asyncapi.yaml',
    info: { title: 'fastify-wsx chat demo', version: '1.0.0', description: 'The chat demo of fastify-wsx (examples/chat).' }
  })
  // the playground refuses production by design: the demo leaves it out there rather than override
  if (process.env.NODE_ENV !== 'production') await app.register(wsxPlayground)
}
