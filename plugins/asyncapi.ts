// Serves the AsyncAPI document of the app's wsx routes. Built lazily on the first request
// (or call), so routes declared after this plugin is registered are included; cached after.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { buildAsyncApi, toYaml, type AsyncApiOptions } from '../lib/boot/asyncapi.js'

/** Options of the `wsxAsyncApi` plugin. */
export interface WsxAsyncApiOptions extends AsyncApiOptions {
  /** where the JSON document is served; default `/wsx/asyncapi.json` */
  path?: string
  /** also serve YAML there (e.g. `/wsx/asyncapi.yaml`); off by default */
  yamlPath?: string
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The AsyncAPI 3.0 document of every wsx route (built once, on first use). */
    wsxAsyncApi: () => Record<string, unknown>
  }
}

async function asyncApiPlugin (fastify: FastifyInstance, opts: WsxAsyncApiOptions): Promise<void> {
  const { path = '/wsx/asyncapi.json', yamlPath, ...docOptions } = opts
  let doc: Record<string, unknown> | null = null
  let json = ''
  let readyDone = false
  // routes may still be declared until ready(): only cache once the app is listening or ready
  const documentNow = (): Record<string, unknown> => {
    if (doc) return doc
    const built = buildAsyncApi(fastify.wsx.describeRoutes(), docOptions)
    if (fastify.server.listening || readyDone) {
      doc = built
      json = JSON.stringify(built)
    }
    return built
  }
  fastify.addHook('onReady', async () => { readyDone = true })

  fastify.decorate('wsxAsyncApi', documentNow)
  fastify.get(path, async (_request, reply) => {
    const built = documentNow()
    return reply.type('application/json; charset=utf-8').send(doc ? json : JSON.stringify(built))
  })
  if (yamlPath) {
    fastify.get(yamlPath, async (_request, reply) => {
      return reply.type('application/yaml; charset=utf-8').send(toYaml(documentNow()).replace(/^\n/, '') + '\n')
    })
  }
}

/**
 * Serves `app.wsx` routes as an AsyncAPI 3.0.0 document and decorates `app.wsxAsyncApi()`.
 * @example app.register(wsxAsyncApi, { info: { title: 'Chat', version: '1.0.0' }, yamlPath: '/wsx/asyncapi.yaml' })
 */
export const wsxAsyncApi = fp(asyncApiPlugin, { fastify: '5.x', name: 'fastify-wsx-asyncapi', dependencies: ['fastify-wsx'] })
export default wsxAsyncApi
