// The debug message log (chanx's): received frames and replies at debug, with the
// trace_id, an ignore list, silent actions, and tokens never in any line.
import { test } from 'tap'
import { Writable } from 'node:stream'
import { Type, action } from '../index.js'
import { connect } from '../testing/index.js'
import { build, tokenFor, verifyJwt } from './helpers/build.js'

test('frames and replies are logged at debug with the trace_id; ignored and silent actions and tokens are not', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  let raw = ''
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      raw += chunk.toString()
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line))
      done()
    }
  })
  const app = await build(t, { fastify: { logger: { level: 'debug', stream } } })
  app.wsx.route({
    url: '/ws',
    authenticate: [verifyJwt],
    actions: {
      'chat.send': action({ request: Type.Object({ text: Type.String() }), handler: async (msg) => ({ text: msg.data.text }) }),
      'heart.beat': action({ silent: true, handler: async () => ({}) }),
      'key.store': action({ request: Type.Object({ token: Type.String() }), handler: async () => ({ stored: true }) })
    }
  })
  const token = tokenFor(app, 'alice')
  const c = await connect(app, '/ws')
  await c.next('socket.handshake')
  await c.authorize(token)
  await c.request('chat.send', { text: 'hello' }, { trace_id: 'trace-abc' })
  await c.request('heart.beat')
  await c.request('socket.ping')
  await c.request('key.store', { token: 'secret-in-data' })
  await c.close()
  // real time: room for any late line (the close's) before checking what was never logged
  await new Promise((resolve) => setTimeout(resolve, 50))

  const about = (action: string, msg: string) => lines.filter((l) => l.action === action && l.msg === msg)
  t.match(about('chat.send', 'wsx frame received'), [{ level: 20, trace_id: 'trace-abc' }])
  t.match(about('chat.send', 'wsx reply sent'), [{ level: 20, trace_id: 'trace-abc', outcome: 'ok' }])
  t.equal(about('heart.beat', 'wsx frame received').length + about('heart.beat', 'wsx reply sent').length, 0, 'silent action not logged')
  t.equal(about('socket.ping', 'wsx frame received').length, 0, 'socket.ping is on the default ignore list')
  t.equal(about('socket.authorize', 'wsx frame received').length, 1, 'the authorize frame is logged...')
  t.notOk(raw.includes(token), '...but the token never is, in any line')
  t.notOk(raw.includes('secret-in-data'), 'request data is never logged')
})
