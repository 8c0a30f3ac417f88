// The MessagePack encoding over real sockets: opt-in per route through the subprotocol,
// frame types enforced both ways, hostile MessagePack refused like hostile JSON, events and
// broadcasts in each member's own encoding, and the typed client speaking it. The shared
// envelope and fuzz suites (envelope.test.ts, fuzz.test.ts) also run over MessagePack.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { WebSocket } from 'ws'
import { build, tokenFor, verifyJwt } from './helpers/build.js'
import { connect, connectUrl, baseUrl, type TestClient } from '../testing/index.js'
import { pack } from './helpers/codecs.js'
import { action, Type } from '../index.js'
import { createClient } from '../client/index.js'
import { msgpack } from '../client/msgpack.js'
import { checkMessagePack, decodeMessagePack, jsonFrameToMessagePack } from '../lib/connection/msgpack-codec.js'

interface Spy { data: unknown[] }

async function appWith (t: Test, spy: Spy, routeMsgpack = true): Promise<FastifyInstance> {
  const app = await build(t, { wsx: { messageRateLimit: false } })
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws/room/:room',
      msgpack: routeMsgpack,
      authenticate: [verifyJwt],
      groups: (conn) => `room:${String(conn.params.room)}`,
      actions: {
        'public.ping': action({ public: true, handler: async () => ({ pong: true }) }),
        'echo.data': action({
          handler: async (msg) => {
            spy.data.push(msg.data)
            return msg.data
          }
        }),
        'chat.send': action({
          request: Type.Object({ text: Type.String({ maxLength: 20 }) }),
          response: Type.Object({ text: Type.String() }),
          // the extra field is dropped by the response schema, in MessagePack as in JSON
          handler: async (msg) => ({ text: msg.data.text, secret: 'never sent' }) as { text: string }
        })
      }
    })
  })
  return app
}

async function packed (t: Test, app: FastifyInstance, sub = 'alice'): Promise<TestClient> {
  const c = await connect(app, '/ws/room/general', { token: tokenFor(app, sub), codec: 'msgpack' })
  t.teardown(() => c.close())
  t.match(await c.next(), { action: 'socket.authorized', data: { via: 'upgrade' } })
  return c
}

t.test('the route opts in: wsx.v1.msgpack is selected only there; JSON clients are unaffected', async (t) => {
  const spy: Spy = { data: [] }
  const app = await appWith(t, spy)
  const c = await packed(t, app)
  t.equal(c.ws.protocol, 'wsx.v1.msgpack')
  t.strictSame(await c.request('chat.send', { text: 'hi' }, { id: 1, trace_id: 'tr' }), { id: 1, ok: true, data: { text: 'hi' }, trace_id: 'tr' },
    'the same reply, the response schema applied')
  t.ok(c.frames.every((f) => f.binary === undefined), 'every server frame was a binary MessagePack frame')

  const json = await connect(app, '/ws/room/general', { token: tokenFor(app, 'bob') })
  t.teardown(() => json.close())
  t.equal(json.ws.protocol, '')
  t.match(await json.request('chat.send', { text: 'yo' }), { ok: true, data: { text: 'yo' } })

  const plain = await appWith(t, spy, false)
  const url = (await baseUrl(plain)) + '/ws/room/general'
  await t.rejects(connectUrl(url, { token: tokenFor(plain, 'carol'), codec: 'msgpack' }), /no subprotocol/i,
    'a client offering only wsx.v1.msgpack to a JSON route fails its handshake')
  const fallback = await connectUrl(url, { token: tokenFor(plain, 'carol'), protocols: ['wsx.v1.msgpack', 'wsx.v1'] })
  t.teardown(() => fallback.close())
  t.equal(fallback.ws.protocol, 'wsx.v1', 'offering both gets JSON on a JSON route')
  t.match(await fallback.next(), { action: 'socket.authorized' })
})

t.test('frame types: text on MessagePack and binary on JSON get the same errors', async (t) => {
  const app = await appWith(t, { data: [] })
  const before = await connect(app, '/ws/room/general', { codec: 'msgpack' })
  t.match(await before.next(), { action: 'socket.handshake' }, 'the in-band handshake starts in MessagePack')
  before.sendRaw('{"action":"public.ping"}')
  t.match(await before.closed(), { code: 4400, reason: 'Text frames are not accepted' }, 'before authentication: 4400')

  const after = await packed(t, app)
  after.sendRaw('{"id":1,"action":"echo.data"}')
  t.match(await after.closed(), { code: 1003, reason: 'Text frames are not accepted' }, 'after authentication: 1003')

  const json = await connect(app, '/ws/room/general', { token: tokenFor(app, 'bob') })
  await json.next('socket.authorized')
  json.sendRaw(pack({ id: 1, action: 'echo.data' }))
  t.match(await json.closed(), { code: 1003, reason: 'Binary frames are not accepted' }, 'binary on a JSON connection, as before')
})

t.test('in-band handshake over MessagePack', async (t) => {
  const app = await appWith(t, { data: [] })
  const c = await connect(app, '/ws/room/general', { codec: 'msgpack' })
  t.teardown(() => c.close())
  t.strictSame(await c.next(), {
    action: 'socket.handshake',
    data: { authorize: 'socket.authorize', attempts: 2, lock_seconds: 20, timeout_seconds: 20, allow_unauth: ['public.ping'] }
  })
  t.match(await c.request('public.ping'), { ok: true, data: { pong: true } })
  t.match(await c.request('echo.data', {}), { ok: false, error: { code: 'not_authenticated' } })
  t.match(await c.authorize('nope'), { id: 't3', ok: false, error: { code: 'authentication_failed', detail: 'Invalid token.', attempts_left: 1 } })
  t.match(await c.authorize(tokenFor(app, 'alice')), { action: 'socket.authorized', data: { via: 'authorize' } })
  t.match(await c.request('echo.data', { a: 1 }), { ok: true, data: { a: 1 } })
})

t.test('hostile MessagePack is a parse_error, never reaches the handler, and the connection keeps working', async (t) => {
  const spy: Spy = { data: [] }
  const app = await appWith(t, spy)
  const c = await packed(t, app)
  const withData = (data: Buffer) => Buffer.concat([Buffer.from([0x83, 0xa2, 0x69, 0x64, 0x01, 0xa6]), Buffer.from('action'), Buffer.from([0xa9]), Buffer.from('echo.data'), Buffer.from([0xa4]), Buffer.from('data'), data])
  const key = (k: string) => Buffer.concat([Buffer.from([0xa0 | k.length]), Buffer.from(k)])
  const rows: Array<[string, Buffer]> = [
    ['__proto__ key in data', withData(Buffer.concat([Buffer.from([0x81]), key('__proto__'), Buffer.from([0x81]), key('isAdmin'), Buffer.from([0xc3])]))],
    ['constructor.prototype in data', withData(Buffer.concat([Buffer.from([0x81]), key('constructor'), Buffer.from([0x81]), key('prototype'), Buffer.from([0x81]), key('x'), Buffer.from([0x01])]))],
    ['__proto__ at the top', pack(JSON.parse('{"id":1,"action":"echo.data","__proto__":{"x":1}}'))],
    ['an extension type (msgpackr would build an Error)', withData(Buffer.from([0xd4, 0x65, 0x00]))],
    ['a timestamp extension', withData(Buffer.from([0xd6, 0xff, 0, 0, 0, 1]))],
    ['binary data', withData(Buffer.from([0x81, 0xa1, 0x62, 0xc4, 0x01, 0x00]))],
    ['a non-string key', withData(Buffer.from([0x81, 0x01, 0x02]))],
    ['a nil key', withData(Buffer.from([0x81, 0xc0, 0x02]))],
    ['NaN', withData(Buffer.from([0x81, 0xa1, 0x6e, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]))],
    ['Infinity as float32', withData(Buffer.from([0x81, 0xa1, 0x6e, 0xca, 0x7f, 0x80, 0, 0]))],
    ['invalid UTF-8 in a string', withData(Buffer.from([0x81, 0xa1, 0x73, 0xa2, 0xc3, 0x28]))],
    ['the never-used byte 0xc1', withData(Buffer.from([0xc1]))],
    ['bytes after the value', Buffer.concat([pack({ id: 1, action: 'echo.data' }), Buffer.from([0x00])])],
    ['truncated', pack({ id: 1, action: 'echo.data', data: { a: 'xyz' } }).subarray(0, 20)],
    ['an array claiming 4 billion items', withData(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]))],
    ['60 000 nested arrays', Buffer.concat([Buffer.alloc(60_000, 0x91), Buffer.from([0xc0])])],
    ['33 nested maps in data', withData(Buffer.concat([Buffer.alloc(32 * 3, Buffer.from([0x81, 0xa1, 0x61])), Buffer.from([0x01])]))]
  ]
  for (const [name, bytes] of rows) {
    c.sendRaw(bytes, { binary: true })
    t.match(await c.next(), { ok: false, error: { code: 'parse_error', detail: /MessagePack|object/ } }, name)
    t.match(await c.request('echo.data', { alive: true }), { ok: true, data: { alive: true } }, `${name}: still works`)
  }
  t.strictSame(spy.data, rows.map(() => ({ alive: true })), 'no hostile frame reached the handler')
  t.ok(c.isOpen)

  // at the limit: 32 levels in all (the envelope, data and 30 maps inside it) are accepted
  const deep = withData(Buffer.concat([Buffer.alloc(31 * 3, Buffer.from([0x81, 0xa1, 0x61])), Buffer.from([0x01])]))
  c.sendRaw(deep, { binary: true })
  t.match(await c.next(), { id: 1, ok: true }, '32 levels are allowed, as in JSON')
})

t.test('the scanner admits exactly the JSON data model', async (t) => {
  const values: unknown[] = [null, true, false, 0, -1, 127, -32, 255, 65_535, 2 ** 32, -(2 ** 31), 1.5, 'é', 'x'.repeat(300), [], {}, { a: [1, { b: 'c' }] }, { constructor: 'fine' }, { constructor: { other: 1 } }]
  for (const value of values) {
    const decoded = decodeMessagePack(pack(value), 32)
    // compared as text: tap's deep equality reads a `constructor` key as the object's class
    t.equal(JSON.stringify(decoded), JSON.stringify(value), JSON.stringify(value).slice(0, 40))
    if (typeof decoded === 'object' && decoded !== null && !Array.isArray(decoded)) t.equal(Object.getPrototypeOf(decoded), Object.prototype)
  }
  t.throws(() => checkMessagePack(pack({ constructor: { prototype: 1 } }), 32), SyntaxError)
  t.throws(() => checkMessagePack(Buffer.alloc(0), 32), SyntaxError, 'an empty frame')
  t.strictSame(decodeMessagePack(Buffer.from([0xcf, 0, 0, 0, 1, 0, 0, 0, 0]), 32), 2 ** 32, 'a uint64 decodes to a number, as JSON would')
})

t.test('events and broadcasts reach each member in its own encoding; a broadcast is encoded once', async (t) => {
  const app = await appWith(t, { data: [] })
  const mp = await packed(t, app, 'alice')
  const json = await connect(app, '/ws/room/general', { token: tokenFor(app, 'bob') })
  t.teardown(() => json.close())
  await json.next('socket.authorized')
  await app.wsx.broadcast('room:general', 'chat.message' as never, { text: 'hello', n: 1 } as never)
  const expected = { action: 'chat.message', data: { text: 'hello', n: 1 } }
  t.strictSame(await mp.next('chat.message'), expected, 'MessagePack member')
  t.strictSame(await json.next('chat.message'), expected, 'JSON member')
  const frame = Buffer.from(JSON.stringify(expected))
  t.equal(jsonFrameToMessagePack(frame), jsonFrameToMessagePack(frame), 'the same Buffer for every member of one broadcast')
})

t.test('the typed client speaks MessagePack with the codec from fastify-wsx/client/msgpack', async (t) => {
  const app = await appWith(t, { data: [] })
  const url = (await baseUrl(app)) + '/ws/room/general'
  const client = createClient(url, { WebSocket, codec: msgpack, token: tokenFor(app, 'alice'), reconnect: false })
  t.teardown(() => client.close())
  t.match(await client.ready(), { via: 'authorize' })
  t.strictSame(await client.request('echo.data' as never, { list: [1, 'two', { three: 3 }] } as never), { list: [1, 'two', { three: 3 }] })
  const got = new Promise((resolve) => client.on('chat.message' as never, ((data: unknown) => resolve(data)) as never))
  await app.wsx.broadcast('room:general', 'chat.message' as never, { text: 'to the client' } as never)
  t.strictSame(await got, { text: 'to the client' })
})
