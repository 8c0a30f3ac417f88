// The envelope over a real socket, once per codec (JSON text frames and MessagePack binary
// frames): the seed shapes with their key order, every `parse_error` row,
// reply-only-with-id, `"id": null` on errors, and trace ids.
import tap, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, verifyJwt, tokenFor } from './helpers/build.js'
import { connect, type Codec, type TestClient } from '../testing/index.js'
import { CODECS, rawFrame, undecodableDetail } from './helpers/codecs.js'
import { action, Type } from '../index.js'

// generated trace ids: a per-process random prefix and a base-36 counter
const GENERATED_TRACE = /^[0-9a-f]{12}-[0-9a-z]+$/

interface Seen { calls: Array<{ data: unknown, id: unknown, trace_id: string }> }

async function chatApp (t: Test, seen: Seen): Promise<FastifyInstance> {
  const app = await build(t)
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws/chat/:room',
      // JSON clients are unaffected by the opt-in: both codecs run against this same route
      msgpack: true,
      authenticate: [verifyJwt],
      actions: {
        'public.ping': action({ public: true, handler: async () => ({ pong: true }) }),
        'chat.send': action({
          request: Type.Object({ text: Type.String({ minLength: 1, maxLength: 5 }) }),
          response: Type.Object({ user: Type.String(), text: Type.String() }),
          handler: async (msg, conn) => {
            seen.calls.push({ data: msg.data, id: msg.id, trace_id: msg.trace_id })
            return { user: conn.user.sub, text: msg.data.text }
          }
        }),
        'echo.data': action({
          handler: async (msg) => {
            seen.calls.push({ data: msg.data, id: msg.id, trace_id: msg.trace_id })
            return { data: msg.data }
          }
        })
      }
    })
  })
  return app
}

/** Connects with a header token and consumes `socket.authorized`. */
async function authed (t: Test, app: FastifyInstance, codec: Codec, sub = 'alice'): Promise<TestClient> {
  const c = await connect(app, '/ws/chat/general', { token: tokenFor(app, sub), codec })
  t.teardown(() => c.close())
  t.match(await c.next(), { action: 'socket.authorized', data: { via: 'upgrade' } })
  return c
}

/**
 * The frame re-serialised: JSON.stringify keeps key order, and both JSON and MessagePack
 * maps decode in wire order, so this compares the frame's text (or its key order).
 */
const wire = (frame: unknown) => JSON.stringify(frame)

for (const codec of CODECS) {
  tap.test(codec, async (t) => {
    t.test('seed shapes, exactly', async (t) => {
      const seen: Seen = { calls: [] }
      const app = await chatApp(t, seen)

      const c = await connect(app, '/ws/chat/general', { codec })
      t.teardown(() => c.close())
      const handshake = await c.next()
      t.strictSame(handshake, {
        action: 'socket.handshake',
        data: { authorize: 'socket.authorize', attempts: 2, lock_seconds: 20, timeout_seconds: 20, allow_unauth: ['public.ping'] }
      }, 'socket.handshake (seed) with the default numbers')
      t.equal(wire(handshake), '{"action":"socket.handshake","data":{"authorize":"socket.authorize","attempts":2,"lock_seconds":20,"timeout_seconds":20,"allow_unauth":["public.ping"]}}')

      c.send({ id: 'auth1', action: 'socket.authorize', data: { token: tokenFor(app, 'alice') } })
      const authorized = await c.next()
      t.strictSame(authorized, { id: 'auth1', action: 'socket.authorized', data: { authenticated: true, via: 'authorize' } }, 'socket.authorized (seed)')
      t.equal(wire(authorized), '{"id":"auth1","action":"socket.authorized","data":{"authenticated":true,"via":"authorize"}}')

      c.send({ id: 'req_1', action: 'chat.send', data: { text: 'hello' }, trace_id: 'abc123' })
      const ok = await c.next()
      t.strictSame(ok, { id: 'req_1', ok: true, data: { user: 'alice', text: 'hello' }, trace_id: 'abc123' }, 'success (seed)')
      t.equal(wire(ok), '{"id":"req_1","ok":true,"data":{"user":"alice","text":"hello"},"trace_id":"abc123"}')

      c.send({ id: 'req_1', action: 'chat.send', data: { text: 'hello world' }, trace_id: 'abc123' })
      const bad = await c.next()
      t.strictSame(bad, {
        id: 'req_1',
        ok: false,
        error: { code: 'validation_error', detail: 'Invalid input.', fields: { text: ['Must NOT have more than 5 characters.'] } },
        trace_id: 'abc123'
      }, 'error (seed shape): id, ok, error{code, detail, fields}, trace_id')
      t.same(Object.keys(bad), ['id', 'ok', 'error', 'trace_id'], 'keys in the seed order')
      t.same(Object.keys(bad.error!), ['code', 'detail', 'fields'])
      t.equal(seen.calls.length, 1, 'the handler ran for the valid request only')
    })

    t.test('socket.ping before and after authentication', async (t) => {
      const app = await chatApp(t, { calls: [] })
      const c = await connect(app, '/ws/chat/general', { codec })
      t.teardown(() => c.close())
      await c.next('socket.handshake')
      t.strictSame(await c.request('socket.ping', undefined, { id: 'p1', trace_id: 'tp' }), { id: 'p1', ok: true, data: { pong: true }, trace_id: 'tp' })
      await c.authorize(tokenFor(app, 'alice'))
      t.match(await c.request('socket.ping', undefined, { id: 2 }), { id: 2, ok: true, data: { pong: true }, trace_id: GENERATED_TRACE })
    })

    t.test('every parse_error row answers and the connection keeps working', async (t) => {
      const seen: Seen = { calls: [] }
      const app = await chatApp(t, seen)
      const c = await authed(t, app, codec)
      const long = 'x'.repeat(129)
      const rows: Array<[string, string, string | null, string]> = [
        ['not decodable', '{"id": "a", "action": ', null, undecodableDetail(codec)],
        ['a JSON string', '"hello"', null, 'A frame must be a JSON object.'],
        ['a JSON number', '42', null, 'A frame must be a JSON object.'],
        ['null', 'null', null, 'A frame must be a JSON object.'],
        ['an array', '[{"id":"a","action":"chat.send"}]', null, 'A frame must be a JSON object.'],
        ['missing action', '{"id":"r1","data":{}}', 'r1', '"action" must be a dotted name of [A-Za-z0-9_] parts, at most 128 characters.'],
        ['empty action', '{"id":"r2","action":""}', 'r2', '"action" must be a dotted name of [A-Za-z0-9_] parts, at most 128 characters.'],
        ['action not a string', '{"id":"r3","action":7}', 'r3', '"action" must be a dotted name of [A-Za-z0-9_] parts, at most 128 characters.'],
        ['action with an empty part', '{"id":"r4","action":"chat..send"}', 'r4', '"action" must be a dotted name of [A-Za-z0-9_] parts, at most 128 characters.'],
        ['action with a slash', '{"id":"r5","action":"chat/send"}', 'r5', '"action" must be a dotted name of [A-Za-z0-9_] parts, at most 128 characters.'],
        ['action of 129 characters', `{"id":"r6","action":"${'a'.repeat(129)}"}`, 'r6', '"action" must be a dotted name of [A-Za-z0-9_] parts, at most 128 characters.'],
        ['id too long', `{"id":"${long}","action":"chat.send"}`, null, '"id" must be at most 128 characters.'],
        ['id a float', '{"id":1.5,"action":"chat.send"}', null, '"id" must be a string or an integer.'],
        ['id an object', '{"id":{"a":1},"action":"chat.send"}', null, '"id" must be a string or an integer.'],
        ['id a boolean', '{"id":true,"action":"chat.send"}', null, '"id" must be a string or an integer.'],
        ['id an unsafe integer', '{"id":9007199254740993,"action":"chat.send"}', null, '"id" must be a string or an integer.'],
        ['data a number', '{"id":"r7","action":"chat.send","data":5}', 'r7', '"data" must be an object.'],
        ['data an array', '{"id":"r8","action":"chat.send","data":[1]}', 'r8', '"data" must be an object.'],
        ['data a string', '{"id":"r9","action":"chat.send","data":"hi"}', 'r9', '"data" must be an object.'],
        ['trace_id too long', `{"id":"r10","action":"chat.send","trace_id":"${long}"}`, 'r10', '"trace_id" must be a string of at most 128 characters.'],
        ['trace_id not a string', '{"id":"r11","action":"chat.send","trace_id":5}', 'r11', '"trace_id" must be a string of at most 128 characters.']
      ]
      let n = 0
      for (const [name, text, id, detail] of rows) {
        c.sendRaw(rawFrame(codec, text))
        const frame = await c.next()
        t.strictSame(frame, { id, ok: false, error: { code: 'parse_error', detail } }, name)
        // the connection still works, and the good frame resets the bad-frame count
        const reply = await c.request('chat.send', { text: 'ok' }, { id: `good${++n}` })
        t.match(reply, { ok: true, data: { text: 'ok' } }, `${name}: still works`)
      }
      t.equal(seen.calls.length, rows.length, 'no bad frame reached the handler')
      t.ok(c.isOpen)
    })

    t.test('at the limits: 128-character id, action and trace_id are accepted; integer ids echo', async (t) => {
      const app = await chatApp(t, { calls: [] })
      const c = await authed(t, app, codec)
      const id128 = 'i'.repeat(128)
      const trace128 = 't'.repeat(128)
      t.match(await c.request('chat.send', { text: 'a' }, { id: id128, trace_id: trace128 }), { id: id128, ok: true, trace_id: trace128 })
      t.match(await c.request('chat.send', { text: 'a' }, { id: 0 }), { id: 0, ok: true })
      t.match(await c.request('chat.send', { text: 'a' }, { id: -12 }), { id: -12, ok: true })
      const action128 = ['a'.repeat(63), 'b'.repeat(64)].join('.')
      t.equal(action128.length, 128)
      t.strictSame(await c.request(action128, {}, { id: 'x', trace_id: 'tr' }),
        { id: 'x', ok: false, error: { code: 'not_found', detail: 'Unknown action.' }, trace_id: 'tr' }, 'a valid 128-character name is parsed (and unknown)')
    })

    t.test('a reply only when the request has an id; errors always, with "id": null', async (t) => {
      const seen: Seen = { calls: [] }
      const app = await chatApp(t, seen)
      const c = await authed(t, app, codec)
      const before = c.frames.length
      c.send({ action: 'chat.send', data: { text: 'quiet' } })
      c.send({ action: 'chat.send', data: { text: 'quiet' }, id: null })
      const reply = await c.request('chat.send', { text: 'loud' }, { id: 'r' })
      t.match(reply, { id: 'r', ok: true, data: { text: 'loud' } })
      t.equal(c.frames.length, before + 1, 'the two id-less requests got no reply')
      t.same(seen.calls.map((x) => x.id), [null, null, 'r'], 'but their handlers ran, in order')

      c.send({ action: 'chat.send', data: { text: 'too long!' }, trace_id: 'tv' })
      t.strictSame(await c.next(), {
        id: null, ok: false, error: { code: 'validation_error', detail: 'Invalid input.', fields: { text: ['Must NOT have more than 5 characters.'] } }, trace_id: 'tv'
      }, 'an error without an id is sent with "id": null')
      c.send({ action: 'no.such' })
      const notFound = await c.next()
      t.match(notFound, { id: null, ok: false, error: { code: 'not_found' }, trace_id: GENERATED_TRACE })
    })

    t.test('trace_id is echoed, or generated and handed to the handler', async (t) => {
      const seen: Seen = { calls: [] }
      const app = await chatApp(t, seen)
      const c = await authed(t, app, codec)
      const echoed = await c.request('chat.send', { text: 'a' }, { trace_id: 'my-trace' })
      t.equal(echoed.trace_id, 'my-trace')
      t.equal(seen.calls[0]!.trace_id, 'my-trace', 'the handler sees the same trace_id')

      const generated = await c.request('chat.send', { text: 'b' })
      t.match(generated.trace_id, GENERATED_TRACE)
      t.equal(seen.calls[1]!.trace_id, generated.trace_id, 'the generated one is the handler\'s')
      const other = await c.request('chat.send', { text: 'c' })
      t.not(other.trace_id, generated.trace_id, 'a new one per request')

      c.send({ id: 'tn', action: 'chat.send', data: { text: 'd' }, trace_id: null })
      t.match(await c.next(), { id: 'tn', ok: true, trace_id: GENERATED_TRACE }, 'a null trace_id is generated too')
    })

    t.test('data absent or null means {}', async (t) => {
      const seen: Seen = { calls: [] }
      const app = await chatApp(t, seen)
      const c = await authed(t, app, codec)
      t.strictSame(await c.request('echo.data', undefined, { id: 'a', trace_id: 'x' }), { id: 'a', ok: true, data: { data: {} }, trace_id: 'x' })
      c.send({ id: 'b', action: 'echo.data', data: null })
      const nulled = await c.next()
      t.match(nulled, { id: 'b', ok: true })
      t.strictSame(nulled.data, { data: {} }, 'null data is {}') // (t.match with `{}` would accept any object)
      t.strictSame(seen.calls.map((x) => x.data), [{}, {}])
      // an absent `data` fails a schema that requires fields, rather than crashing the handler
      c.send({ id: 'c', action: 'chat.send' })
      t.match(await c.next(), { id: 'c', ok: false, error: { code: 'validation_error', fields: { text: ['Must have required property \'text\'.'] } } })
    })

    t.test('extra envelope keys are ignored; the socket selects the offered subprotocol', async (t) => {
      const app = await chatApp(t, { calls: [] })
      const offered = codec === 'json' ? 'wsx.v1' : 'wsx.v1.msgpack'
      const c = await connect(app, '/ws/chat/general', { token: tokenFor(app, 'alice'), protocols: [...new Set([offered, 'wsx.v1'])], codec })
      t.teardown(() => c.close())
      t.equal(c.ws.protocol, offered, `the server selects ${offered} when offered`)
      await c.next('socket.authorized')
      c.send({ id: 'e', action: 'chat.send', data: { text: 'x' }, extra: 1 })
      t.match(await c.next(), { id: 'e', ok: true })

      const plain = await connect(app, '/ws/chat/general', { token: tokenFor(app, 'bob') })
      // no subprotocol means JSON, whatever the route allows
      t.teardown(() => plain.close())
      t.equal(plain.ws.protocol, '', 'no subprotocol when none is offered')
      t.match(await plain.next(), { action: 'socket.authorized' })
    })
  })
}
