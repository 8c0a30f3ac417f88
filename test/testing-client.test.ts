// fastify-wsx/testing itself: the first frame is never lost, replies resolve by id past
// interleaved events, next() filters and times out, close codes, refused upgrades,
// several clients per test, connectUrl/baseUrl, and the injectWS mode.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, verifyJwt, tokenFor } from './helpers/build.js'
import { baseUrl, connect, connectUrl, UpgradeRefusedError } from '../testing/index.js'
import { action, Type } from '../index.js'

async function chat (t: Test): Promise<FastifyInstance> {
  const app = await build(t, { wsx: { connectionRateLimit: false } })
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws',
      authenticate: [verifyJwt],
      actions: {
        'chat.burst': action({
          request: Type.Object({ n: Type.Integer({ maximum: 20 }) }),
          handler: async (msg, conn) => {
            for (let i = 0; i < msg.data.n; i++) conn.send('chat.tick' as never, { i } as never)
            return { sent: msg.data.n }
          }
        }),
        'chat.bye': action({ handler: async (_msg, conn) => { setTimeout(() => conn.close(4000, 'see you'), 10); return {} } })
      }
    })
  })
  return app
}

t.test('real-socket mode: first frame, replies by id past events, filters, frames, close codes', async (t) => {
  const app = await chat(t)
  const c = await connect(app, '/ws', { token: tokenFor(app, 'alice') })
  t.teardown(() => c.close())
  t.match(await c.next(), { action: 'socket.authorized' }, 'the first frame is never lost')

  const reply = await c.request('chat.burst', { n: 3 })
  t.match(reply, { ok: true, data: { sent: 3 } }, 'the reply resolves by id even though events came first')
  t.same(await c.next((f) => f.action === 'chat.tick' && (f.data as { i: number }).i === 2), { action: 'chat.tick', data: { i: 2 } }, 'a filter function')
  t.same(await c.next('chat.tick'), { action: 'chat.tick', data: { i: 0 } }, 'unread frames are kept in order')
  t.same(await c.next(), { action: 'chat.tick', data: { i: 1 } })
  t.equal(c.frames.length, 5, 'every frame is collected in order')
  t.match(await c.request('chat.burst', { n: 1 }, { id: 99, trace_id: 'tr' }), { id: 99, trace_id: 'tr' }, 'explicit id and trace_id')

  await t.rejects(c.next('never.sent', 100), /no frame "never.sent" within 100 ms/, 'next() times out with a clear message')
  t.match(await c.request('chat.burst', { n: 100 }), { ok: false, error: { code: 'validation_error' } }, 'error replies resolve too')

  await c.request('chat.bye')
  t.strictSame(await c.closed(), { code: 4000, reason: 'see you' }, 'closed() gives the code and reason')
  t.notOk(c.isOpen)
})

t.test('refused upgrades reject with UpgradeRefusedError; several clients; connectUrl and baseUrl', async (t) => {
  const app = await chat(t)
  const err = await connect(app, '/ws', { token: 'bad' }).catch((e: unknown) => e)
  t.type(err, UpgradeRefusedError)
  t.equal((err as UpgradeRefusedError).statusCode, 401)
  t.match((err as UpgradeRefusedError).headers, { 'content-type': /json/ })
  t.equal(await connect(app, '/nope').then(() => 0, (e: UpgradeRefusedError) => e.statusCode), 404)

  const url = await baseUrl(app)
  t.match(url, /^ws:\/\/127\.0\.0\.1:\d+$/)
  t.equal(await baseUrl(app), url, 'started once')
  const clients = await Promise.all(['a', 'b', 'c'].map((sub) => connectUrl(`${url}/ws`, { token: tokenFor(app, sub) })))
  t.teardown(() => Promise.all(clients.map((c) => c.close())))
  for (const c of clients) t.match(await c.next(), { action: 'socket.authorized' })
  const replies = await Promise.all(clients.map((c, i) => c.request('chat.burst', { n: i })))
  t.same(replies.map((r) => (r.data as { sent: number }).sent), [0, 1, 2], 'each client gets its own reply')

  const anon = await connectUrl(`${url}/ws`)
  t.teardown(() => anon.close())
  t.match(await anon.next(), { action: 'socket.handshake' })
  t.match(await anon.authorize(tokenFor(app, 'd')), { action: 'socket.authorized' }, 'authorize() helper')

  await t.rejects(connectUrl('ws://127.0.0.1:1/ws', { timeoutMs: 500 }), 'an unreachable server rejects')
  await t.rejects(anon.closed(50), /not closed within 50 ms/)
})

t.test('inject mode (no port): the first frame and replies', async (t) => {
  const app = await chat(t)
  const c = await connect(app, '/ws', { token: tokenFor(app, 'alice'), mode: 'inject' })
  t.match(await c.next(), { action: 'socket.authorized' }, 'the first frame arrives in inject mode too')
  t.match(await c.request('chat.burst', { n: 2 }), { ok: true, data: { sent: 2 } })
  t.notOk(app.server.listening, 'no port was opened')
  const refused = await connect(app, '/ws', { token: 'bad', mode: 'inject' }).catch((e: unknown) => e)
  t.type(refused, UpgradeRefusedError, 'a refused upgrade rejects the same way')
  t.equal((refused as UpgradeRefusedError).statusCode, 401)
  c.ws.terminate()
})
