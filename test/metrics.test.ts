// Prometheus export: real messages through a real socket, then a scrape of GET /metrics.
import { test } from 'tap'
import { Registry } from 'prom-client'
import { build, tokenFor, verifyJwt } from './helpers/build.js'
import { eventually } from './helpers/eventually.js'
import { connect } from '../testing/index.js'
import { action, Type } from '../index.js'
import { wsxMetrics } from '../plugins/metrics.js'

/** The value of one series in Prometheus text, or undefined. */
function series (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = m[2] ? m[2].split(',') : []
    if (want.length === have.length && want.every((l) => have.includes(l))) return Number(m[3])
  }
  return undefined
}

test('GET /metrics exposes the wsx counters, gauges and latency histogram', async (t) => {
  const app = await build(t)
  const register = new Registry()
  await app.register(wsxMetrics, { register })
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws/m',
      authenticate: [verifyJwt],
      actions: {
        'chat.send': action({ request: Type.Object({ text: Type.String({ minLength: 1 }) }), handler: async (msg) => ({ text: msg.data.text }) })
      }
    })
  })
  const c = await connect(app, '/ws/m', { token: tokenFor(app, 'alice') })
  await c.next('socket.authorized')
  t.match(await c.request('chat.send', { text: 'hi' }), { ok: true })
  t.match(await c.request('chat.send', { text: 'again' }), { ok: true })
  t.match(await c.request('chat.send', { text: '' }), { ok: false, error: { code: 'validation_error' } })
  t.match(await c.request('nope.nothing'), { ok: false, error: { code: 'not_found' } })

  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  const text = res.body
  t.equal(series(text, 'wsx_connections_open', { route: '/ws/m' }), 1)
  t.equal(series(text, 'wsx_connections_total'), 1)
  t.equal(series(text, 'wsx_messages_total', { action: 'chat.send', outcome: 'ok' }), 2)
  t.equal(series(text, 'wsx_messages_total', { action: 'chat.send', outcome: 'validation_error' }), 1)
  t.equal(series(text, 'wsx_messages_total', { action: 'nope.nothing', outcome: 'not_found' }), 1)
  t.equal(series(text, 'wsx_messages_received_total'), 4)
  t.ok(series(text, 'wsx_messages_sent_total')! >= 5, 'authorized frame plus four replies')
  t.equal(series(text, 'wsx_handler_duration_seconds_count'), 2, 'only handlers that ran are timed')
  t.equal(series(text, 'wsx_handler_duration_seconds_bucket', { le: '+Inf' }), 2)
  t.ok(series(text, 'wsx_handler_duration_seconds_bucket', { le: '5' }) === 2, 'buckets in seconds')
  t.equal(series(text, 'wsx_bus_up'), 1)
  t.match(text, /# TYPE wsx_handler_duration_seconds histogram/)
  t.match(text, /# TYPE wsx_messages_total counter/)

  await c.close()
  const after = await eventually(async () => (await app.inject('/metrics')).body, (body) => series(body, 'wsx_connections_open', { route: '/ws/m' }) === 0, { what: 'the close to be counted' })
  t.equal(series(after, 'wsx_connections_open', { route: '/ws/m' }), 0)
  t.equal(series(after, 'wsx_closes_total', { code: '1000' }), 1)
})

test('path: false serves nothing; closing the app unregisters the collectors', async (t) => {
  const app = await build(t)
  const register = new Registry()
  await app.register(wsxMetrics, { register, path: false, prefix: 'chat_' })
  await app.ready()
  t.equal((await app.inject('/metrics')).statusCode, 404)
  t.match(await register.metrics(), /chat_connections_total 0/)
  await app.close()
  t.equal(await register.metrics(), '\n', 'nothing left after close')
})
