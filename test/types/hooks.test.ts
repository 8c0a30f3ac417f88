// Compile-time checks: every hook shape Fastify accepts is a strategy or a preHandler
// without a cast (`npx tsc -p tsconfig.json` is the real test; each `@ts-expect-error`
// fails the type check when its line stops being an error).
import t from 'tap'
import Fastify, { type FastifyReply, type FastifyRequest, type HookHandlerDoneFunction, type onRequestHookHandler, type preHandlerAsyncHookHandler } from 'fastify'
import fastifyAuth from '@fastify/auth'
import fastifyBasicAuth from '@fastify/basic-auth'
import fastifyBearerAuth from '@fastify/bearer-auth'
import wsx, { action, handshakeOnly, type WsxHook } from '../../index.js'

async function checks (): Promise<void> {
  const app = Fastify()
  await app.register(fastifyAuth)
  await app.register(fastifyBasicAuth, { validate: async () => {} })
  await app.register(fastifyBearerAuth, { keys: ['k'], addHook: false })
  await app.register(wsx)

  const asyncHook = async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => { await request.jwtVerify() }
  const callbackHook = (_request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => { done() }
  const looseCallback = function (_request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) { done() }
  const typedOnRequest: onRequestHookHandler = (_request, _reply, done) => done()
  const typedPreHandler: preHandlerAsyncHookHandler = async () => {}

  app.wsx.route({
    url: '/ws',
    authenticate: [
      asyncHook,
      callbackHook,
      looseCallback,
      typedOnRequest,
      typedPreHandler,
      app.auth([asyncHook, callbackHook]),
      app.auth([asyncHook, [callbackHook, looseCallback]], { relation: 'and' }),
      app.basicAuth,
      app.verifyBearerAuth!,
      handshakeOnly(asyncHook),
      handshakeOnly(app.auth([callbackHook])),
      // inline functions are typed from context, in both shapes
      async (request) => { await request.jwtVerify() },
      (request, reply, done) => { if (request.headers['x-api-key'] === 'k') done(); else reply.code(401).send() }
    ],
    actions: {
      'a.b': action({
        preHandler: [asyncHook, callbackHook, app.auth([asyncHook])],
        handler: async () => ({})
      })
    }
  })

  const one: WsxHook = app.auth([asyncHook])
  use(one)
  // @ts-expect-error a strategy is a function, not a string
  app.wsx.route({ url: '/x', authenticate: ['jwt'], actions: {} })
  // @ts-expect-error a hook takes a request first, not a number
  app.wsx.route({ url: '/y', authenticate: [(n: number) => n], actions: {} })
}

/** Marks values as used (the checks are their types). */
function use (..._values: unknown[]): void {}

t.pass('hook shapes type-check (see tsc)')
use(checks)
