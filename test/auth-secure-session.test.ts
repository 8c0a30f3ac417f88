// Conformance matrix, stateless session row: @fastify/secure-session (the session lives in
// an encrypted cookie). Same function on the HTTP route and the WebSocket route; the
// cookie authenticates at the upgrade; in-band, `session_id` carries the cookie's value
// (the route names its cookie with `credentials.sessionCookie`).
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import fastifySecureSession from '@fastify/secure-session'
import { action } from '../index.js'
import { bareApp, cookieFrom, inbandAuthenticates, inbandFails, upgradeAuthenticates, upgradeOpensHandshake, upgradeRefused } from './helpers/auth-matrix.js'

declare module '@fastify/secure-session' {
  interface SessionData { user: { sub: string } }
}

async function sessionUser (request: FastifyRequest): Promise<void> {
  const user = request.session.get('user')
  if (!user) throw Object.assign(new Error('not logged in'), { statusCode: 401 })
  request.user = user
}

t.test('@fastify/secure-session', async (t) => {
  const app = await bareApp(t, async (app) => {
    await app.register(fastifySecureSession, { secret: 'a-secure-session-secret-longer-than-32', salt: 'mq9hDxBVDbspDR6n', cookie: { path: '/' } })
  })
  app.post<{ Body: { user: string } }>('/login', async (request) => {
    request.session.set('user', { sub: request.body.user })
    return { ok: true }
  })
  app.get('/api/me', { onRequest: sessionUser }, async (request) => ({ user: request.user }))
  app.wsx.route({
    url: '/ws',
    authenticate: [sessionUser],
    credentials: { sessionCookie: 'session' },
    actions: { 'me.get': action({ handler: async (_msg, conn) => ({ user: conn.user, via: conn.via }) }) }
  })
  app.wsx.route({ url: '/ws/strict', authenticate: [sessionUser], handshake: false, actions: { 'me.get': action({ handler: async () => ({}) }) } })

  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'ivan' } })
  const cookie = cookieFrom(login.headers['set-cookie'], 'session')
  t.equal((await app.inject({ url: '/api/me', headers: { cookie: `session=${cookie}` } })).statusCode, 200, 'HTTP: the session cookie')
  t.equal((await app.inject({ url: '/api/me', headers: { cookie: 'session=tampered' } })).statusCode, 401, 'HTTP: a tampered cookie')

  const c = await upgradeAuthenticates(t, app, '/ws', { cookie: `session=${cookie}` }, 'the session cookie')
  t.match(await c.request('me.get'), { ok: true, data: { user: { sub: 'ivan' }, via: 'upgrade' } })
  const h = await upgradeOpensHandshake(t, app, '/ws', { cookie: 'session=tampered' }, 'a tampered cookie')
  await inbandFails(t, h, { session_id: 'tampered' }, 'a tampered session')
  await inbandAuthenticates(t, h, { session_id: cookie }, 'session_id (as the session cookie)')
  t.match(await h.request('me.get'), { ok: true, data: { user: { sub: 'ivan' }, via: 'authorize' } })

  // with the in-band handshake off, a failed cookie is a plain 401, as over HTTP
  await upgradeAuthenticates(t, app, '/ws/strict', { cookie: `session=${cookie}` }, 'handshake: false, the cookie')
  await upgradeRefused(t, app, '/ws/strict', { cookie: 'session=tampered' }, 401, 'handshake: false, a tampered cookie')
})
