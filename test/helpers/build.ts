// build(t): a Fastify app with @fastify/jwt and fastify-wsx, closed at teardown.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import wsx from '../../index.js'
import type { WsxPluginOptions } from '../../types/options.js'

export const SECRET = 'test-secret-test-secret-test-secret!'

interface TapLike { teardown (fn: () => unknown): void }

export interface BuildOptions {
  wsx?: WsxPluginOptions
  fastify?: FastifyServerOptions
  /** runs before fastify-wsx is registered (e.g. @fastify/redis); its options win over `wsx` */
  before?: (app: FastifyInstance) => Promise<WsxPluginOptions | undefined> | WsxPluginOptions | undefined
}

/** The app's own HTTP strategy, reused unchanged by WebSocket routes. */
export async function verifyJwt (this: unknown, request: { jwtVerify: () => Promise<unknown> }): Promise<void> {
  await request.jwtVerify()
}

export async function build (t: TapLike, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, ...opts.fastify })
  await app.register(fastifyJwt, { secret: SECRET, verify: { algorithms: ['HS256'], requiredClaims: ['exp'] } })
  const late = await opts.before?.(app)
  await app.register(wsx, { heartbeatMs: 0, ...opts.wsx, ...late })
  t.teardown(async () => {
    for (const c of app.websocketServer?.clients ?? []) c.terminate()
    await app.close()
  })
  return app
}

/** A signed HS256 token for `sub`, valid `ttl` seconds. */
export function tokenFor (app: FastifyInstance, sub: string, claims: Record<string, unknown> = {}, ttl = 3600): string {
  return app.jwt.sign({ sub, ...claims }, { expiresIn: ttl })
}
