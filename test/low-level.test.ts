// The low-level socket API (app.wsx.socket) over a real socket: iterate and echo text
// and bytes, receive with a timeout, JSON, close codes, early frames kept, a throwing
// handler closed 1011, and the upgrade checks (origin, scope hooks) still applied.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { build } from './helpers/build.js'
import { eventually } from './helpers/eventually.js'
import { connect, UpgradeRefusedError, type TestClient } from '../testing/index.js'
import { SocketClosedError, Type } from '../index.js'

/** The HTTP status a refused upgrade answered, or 0 when it was accepted. */
async function statusOf (p: Promise<TestClient>): Promise<number> {
  return p.then((c) => { c.ws.terminate(); return 0 }, (err: { statusCode?: number }) => err.statusCode ?? -1)
}

t.test('echo: text as "Echo: <text>", bytes as bytes, until the client closes', async (t) => {
  const app = await build(t)
  let ended = false
  app.wsx.socket('/ws/echo', async (socket) => {
    for await (const m of socket) {
      if (m.type === 'text') socket.sendText(`Echo: ${m.data}`)
      else socket.sendBytes(m.data)
    }
    ended = true
  })
  const c = await connect(app, '/ws/echo')
  c.sendRaw('hello')
  t.strictSame(await c.next(), { text: 'Echo: hello' })
  c.sendRaw('{"json":"stays text"}')
  t.strictSame(await c.next(), { text: 'Echo: {"json":"stays text"}' })
  t.same(c.texts, ['Echo: hello', 'Echo: {"json":"stays text"}'])

  const bytes = Buffer.from([0, 1, 2, 250, 255])
  const binary = new Promise<{ data: Buffer, isBinary: boolean }>((resolve) => c.ws.once('message', (data, isBinary) => resolve({ data: data as Buffer, isBinary })))
  c.sendRaw(bytes)
  const echoed = await binary
  t.ok(echoed.isBinary, 'a binary frame comes back binary')
  t.same([...echoed.data], [...bytes])
  await c.close()
  await t.resolves(eventually(() => ended, { what: 'the iterator to end' }), 'the iterator ends when the socket closes')
})

t.test('receive with a timeout, sendJson, receiveJson, close with a code', async (t) => {
  const app = await build(t)
  const results: unknown[] = []
  app.wsx.socket('/ws/rpc/:name', async (socket) => {
    socket.sendJson({ hello: socket.params.name, q: socket.query.n })
    const first = await socket.receiveJson<{ n: number }>(1000)
    socket.sendJson({ doubled: first.n * 2 })
    try {
      await socket.receiveText(150)
    } catch (err) {
      results.push(err)
      socket.sendJson({ timedOut: err instanceof SocketClosedError })
      socket.close(4000, 'bye')
    }
  }, { schema: { params: Type.Object({ name: Type.String({ pattern: '^[a-z]+$' }) }), querystring: Type.Object({ n: Type.Optional(Type.Integer()) }) } })

  const c = await connect(app, '/ws/rpc/bob?n=3')
  t.strictSame(await c.next(), { hello: 'bob', q: 3 }, 'params and a coerced query')
  c.send({ n: 21 })
  t.strictSame(await c.next(), { doubled: 42 })
  t.strictSame(await c.next(), { timedOut: true }, 'receiveText rejects after its timeout')
  t.strictSame(await c.closed(), { code: 4000, reason: 'bye' }, 'closed with the handler\'s code and reason')
  t.match(results[0], { name: 'SocketClosedError', message: 'no message within 150 ms' })

  t.equal(await statusOf(connect(app, '/ws/rpc/BOB')), 400, 'schemas still apply at the upgrade')
})

t.test('frames sent before the handler reads are kept; a throwing handler closes 1011 and nothing crashes', async (t) => {
  const app = await build(t)
  app.wsx.socket('/ws/late', async (socket) => {
    await sleep(100) // frames arrive meanwhile
    const got = [await socket.receiveText(500), await socket.receiveText(500)]
    socket.sendJson({ got })
  })
  app.wsx.socket('/ws/throws', async (socket) => {
    await socket.receiveText(1000)
    throw new Error('internal handler secret')
  })
  app.wsx.socket('/ws/binary-as-text', async (socket) => {
    const m = await socket.receiveText(1000).catch((err: Error) => err.message)
    socket.sendJson({ m })
  })

  const late = await connect(app, '/ws/late')
  late.sendRaw('one')
  late.sendRaw('two')
  t.strictSame(await late.next(), { got: ['one', 'two'] }, 'nothing lost while the handler awaited')

  const boom = await connect(app, '/ws/throws')
  boom.sendRaw('go')
  const closed = await boom.closed()
  t.equal(closed.code, 1011)
  t.notMatch(closed.reason, /secret/, 'the internal message is not the close reason')

  const typed = await connect(app, '/ws/binary-as-text')
  typed.sendRaw(Buffer.from('bin'))
  t.strictSame(await typed.next(), { m: 'expected a text frame, got a binary one' })

  const again = await connect(app, '/ws/late')
  again.sendRaw('a')
  again.sendRaw('b')
  t.strictSame(await again.next(), { got: ['a', 'b'] }, 'the server still works')
})

t.test('low-level routes get the upgrade checks: origin and the scope\'s hooks', async (t) => {
  const app = await build(t)
  let hookCalls = 0
  app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      hookCalls++
      if (request.headers['x-key'] !== 'k') return reply.code(401).send({ message: 'no key' })
    })
    scope.wsx.socket('/echo', async (socket) => {
      for await (const text of socket.iterText()) socket.sendText(text.toUpperCase())
    })
  }, { prefix: '/secure' })

  await t.rejects(connect(app, '/secure/echo', { headers: { 'x-key': 'k' }, origin: 'http://evil.com' }), UpgradeRefusedError, 'a foreign origin')
  t.equal(await statusOf(connect(app, '/secure/echo', { headers: { 'x-key': 'k' }, origin: 'http://evil.com' })), 403)
  t.equal(await statusOf(connect(app, '/secure/echo')), 401, 'the scope hook runs at the upgrade')
  const c = await connect(app, '/secure/echo', { headers: { 'x-key': 'k' } })
  t.teardown(() => c.close())
  c.sendRaw('shout')
  t.strictSame(await c.next(), { text: 'SHOUT' })
  // the origin check is a root hook: refused origins never reach the scope's hook
  t.equal(hookCalls, 2, 'the scope hook ran only for upgrades that passed the origin check')
})
