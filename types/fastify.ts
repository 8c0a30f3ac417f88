// Every augmentation fastify-wsx makes to Fastify's types, in one place.
import type {} from '@fastify/websocket'
import type { WsxFacade } from '../lib/instance/facade.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** fastify-wsx: declare routes, broadcast, push to users, read stats. */
    wsx: WsxFacade
  }
}
