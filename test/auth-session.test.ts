// Conformance matrix, session row: @fastify/cookie + @fastify/session (server-side store).
// The same function protects the HTTP route and the WebSocket route; a session cookie
// authenticates at the upgrade on a route with default settings; a stale one falls back to
// the in-band handshake, where `session_id` is presented as the session cookie. Per-message
// hooks see `request.cookies`, `request.session` and the real upgrade URL.
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { action } from '../index.js'
import { bareApp, cookieFrom, inbandAuthenticates, inbandFails, upgradeAuthenticates, upgradeOpensHandshake } from './helpers/auth-matrix.js'

declare module 'fastify' {
  interface Session { user?: { sub: string } }
}

function unauthorized (): Error {
  return Object.assign(new Error('not logged in'), { statusCode: 401 })
}

/** The app's session check, as its HTTP routes use it. */
async function sessionUser (request: FastifyRequest): Promise<void> {
  const user = request.session.get('user')
  if (!user) throw unauthorized()
  request.user = user
}

t.test('@fastify/cookie + @fastify/session', async (t) => {
  const app = await bareApp(t, async (app) => {
    await app.register(fastifyCookie)
    await app.register(fastifySession, { secret: 'a-session-secret-of-at-least-32-chars!', cookie: { secure: false } })
  })
  app.post<{ Body: { user: string } }>('/login', async (request) => {
    request.session.set('user', { sub: request.body.user })
    return { ok: true }
  })
  app.get('/api/me', { onRequest: sessionUser }, async (request) => ({ user: request.user }))
  const seen: Array<Record<string, unknown>> = []
  app.wsx.route({
    url: '/ws',
    authenticate: [sessionUser],
    actions: {
      'me.get': action({
        // a per-message preHandler sees what an HTTP preHandler would
        preHandler: async (request) => {
          seen.push({ url: request.url, cookie: request.cookies.sessionId !== undefined, session: request.session.get('user') })
        },
        handler: async (_msg, conn) => ({ user: conn.user, via: conn.via })
      })
    }
  })

  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'hana' } })
  const sid = cookieFrom(login.headers['set-cookie'], 'sessionId')
  t.equal((await app.inject({ url: '/api/me', headers: { cookie: `sessionId=${sid}` } })).statusCode, 200, 'HTTP: the session cookie')
  t.equal((await app.inject({ url: '/api/me' })).statusCode, 401, 'HTTP: no session')

  const c = await upgradeAuthenticates(t, app, '/ws?room=x', { cookie: `sessionId=${sid}` }, 'the session cookie, default route settings')
  t.match(await c.request('me.get'), { ok: true, data: { user: { sub: 'hana' }, via: 'upgrade' } })
  t.same(seen.pop(), { url: '/ws?room=x', cookie: true, session: { sub: 'hana' } }, 'preHandler: real URL, cookies and session of the upgrade')

  const stale = await upgradeOpensHandshake(t, app, '/ws', { cookie: 'sessionId=stale.cookie' }, 'a stale session cookie')
  await inbandFails(t, stale, { session_id: 'forged.value' }, 'a forged session id')
  await inbandAuthenticates(t, stale, { session_id: sid }, 'session_id (as the session cookie)')
  t.match(await stale.request('me.get'), { ok: true, data: { user: { sub: 'hana' }, via: 'authorize' } })
  t.match(seen.pop(), { session: { sub: 'hana' } }, 'preHandler: the session that authorized in-band')

  const none = await upgradeOpensHandshake(t, app, '/ws', {}, 'no cookie at all')
  await inbandFails(t, none, { session_id: 'bad value; with=separators' }, 'a value that is not a cookie value')
})
