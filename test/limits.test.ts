// Limits over real sockets: bad frames in a row (4400), oversized frames (1009), depth
// bombs, the per-connection queue (1013), a reader that stops reading (closed, server
// unharmed) and heartbeat termination of a peer that never answers pings.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { connect as tcpConnect, type AddressInfo, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { build, verifyJwt, tokenFor } from './helpers/build.js'
import { eventually } from './helpers/eventually.js'
import { connect, type TestClient } from '../testing/index.js'
import { exceedsDepth } from '../lib/connection/json-codec.js'
import { action, Type } from '../index.js'
import type { RouteOptions, WsxPluginOptions } from '../types/options.js'

interface Spy { calls: number }

async function appWith (t: Test, spy: Spy, wsx: WsxPluginOptions = {}, route: Partial<RouteOptions> = {}): Promise<FastifyInstance> {
  const app = await build(t, { wsx: { connectionRateLimit: false, ...wsx } })
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws',
      authenticate: [verifyJwt],
      actions: {
        'echo.text': action({
          request: Type.Object({ text: Type.String() }),
          handler: async (msg) => { spy.calls++; return { text: msg.data.text } }
        }),
        'slow.op': action({ handler: async () => { spy.calls++; await sleep(200); return {} } })
      },
      ...route
    })
  })
  return app
}

async function authed (t: Test, app: FastifyInstance, sub = 'alice'): Promise<TestClient> {
  const c = await connect(app, '/ws', { token: tokenFor(app, sub) })
  t.teardown(() => c.close())
  await c.next('socket.authorized')
  return c
}

/** A raw TCP client that completes the upgrade and then does only what the test says. */
async function rawClient (app: FastifyInstance, path: string, token: string): Promise<{ sock: Socket, closed: Promise<void> }> {
  if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  const sock = tcpConnect(port, '127.0.0.1')
  sock.on('error', () => {})
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    let head = ''
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      sock.off('data', onData)
      if (head.startsWith('HTTP/1.1 101')) resolve()
      else reject(new Error(head.split('\r\n')[0]))
    }
    sock.on('data', onData)
    sock.write([
      `GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, `Authorization: Bearer ${token}`, '', ''
    ].join('\r\n'))
  })
  return { sock, closed }
}

t.test('bad frames in a row after authentication: 4400 at maxBadFrames; a good frame resets the count', async (t) => {
  const spy = { calls: 0 }
  const app = await appWith(t, spy, { maxBadFrames: 3 })
  const c = await authed(t, app)
  c.sendRaw('x')
  c.sendRaw('[]')
  t.match(await c.request('echo.text', { text: 'reset' }), { ok: true })
  c.sendRaw('x')
  c.sendRaw('x')
  t.match(await c.request('echo.text', { text: 'still' }), { ok: true }, 'two bad, good, two bad: still open')
  for (let i = 0; i < 3; i++) c.sendRaw('{bad')
  t.equal((await c.closed()).code, 4400)
  t.equal(c.frames.filter((f) => f.error?.code === 'parse_error').length, 7, 'every bad frame was answered before the close')

  const defaults = await appWith(t, { calls: 0 })
  const d = await authed(t, defaults)
  for (let i = 0; i < 9; i++) d.sendRaw('nope')
  t.match(await d.request('socket.ping'), { ok: true }, 'nine in a row are tolerated by default')
  for (let i = 0; i < 10; i++) d.sendRaw('nope')
  t.equal((await d.closed()).code, 4400, 'ten in a row close 4400 by default')
  t.match(await (await authed(t, defaults)).request('echo.text', { text: 'x' }), { ok: true }, 'a fresh connection works')
})

t.test('oversized frames close 1009 (plugin maxPayload, and a smaller route maxPayload in bytes)', async (t) => {
  const spy = { calls: 0 }
  const app = await appWith(t, spy, { maxPayload: 1024 })
  const c = await authed(t, app)
  t.match(await c.request('echo.text', { text: 'a'.repeat(900) }), { ok: true }, 'under the limit')
  c.send({ id: 'big', action: 'echo.text', data: { text: 'a'.repeat(1100) } })
  t.equal((await c.closed()).code, 1009, 'over the plugin limit')

  const small = await appWith(t, spy, {}, { maxPayload: 200 })
  const s = await authed(t, small)
  t.match(await s.request('echo.text', { text: 'a'.repeat(100) }), { ok: true })
  // 100 characters but 200 bytes of UTF-8, plus the envelope: over 200 bytes
  s.send({ id: 'big', action: 'echo.text', data: { text: 'é'.repeat(100) } })
  t.equal((await s.closed()).code, 1009, 'over the route limit, counted in bytes')
  t.equal(spy.calls, 2, 'oversized frames never reached the handler')
  t.match(await (await authed(t, small)).request('echo.text', { text: 'x' }), { ok: true }, 'a fresh connection works')
})

t.test('depth bombs are parse errors, not crashes', async (t) => {
  const spy = { calls: 0 }
  const app = await appWith(t, spy)
  const c = await authed(t, app)
  const bombs = [
    '['.repeat(100) + ']'.repeat(100),
    '['.repeat(60_000),
    '{"id":"d","action":"echo.text","data":{"text":"x","deep":' + '{"a":'.repeat(40) + '1' + '}'.repeat(40) + '}}'
  ]
  const expected = [
    { id: null, detail: 'The frame nests deeper than 32 levels.' },
    { id: null, detail: 'The frame is not valid JSON.' },
    { id: 'd', detail: 'The frame nests deeper than 32 levels.' }
  ]
  for (const [i, bomb] of bombs.entries()) {
    c.sendRaw(bomb)
    const { id, detail } = expected[i]!
    t.strictSame(await c.next(), { id, ok: false, error: { code: 'parse_error', detail } }, `${bomb.slice(0, 20)}… (${bomb.length} chars)`)
    t.match(await c.request('echo.text', { text: 'alive' }), { ok: true }, 'the connection still works')
  }
  const brackets = '['.repeat(200) + '\\"{{{'
  t.match(await c.request('echo.text', { text: brackets }), { ok: true, data: { text: brackets } }, 'brackets inside strings do not count')
  t.equal(spy.calls, 4)

  t.equal(exceedsDepth(JSON.parse('{"a":[1,{"b":2}]}'), 3), false)
  t.equal(exceedsDepth(JSON.parse('{"a":[1,{"b":[]}]}'), 3), true)
  t.equal(exceedsDepth(JSON.parse('{"a":"[[[[\\"[[[["}'), 1), false, 'escaped quotes keep the string open')
})

t.test('maxQueued: a connection that queues too much is closed 1013', async (t) => {
  const spy = { calls: 0 }
  const app = await appWith(t, spy, { maxQueued: 2 })
  const c = await authed(t, app)
  const tcp = (c.ws as unknown as { _socket: Socket })._socket
  tcp.cork()
  for (let i = 0; i < 5; i++) c.send({ id: i, action: 'slow.op' })
  tcp.uncork()
  t.equal((await c.closed()).code, 1013)
  t.ok(spy.calls <= 1, `at most the running handler started (${spy.calls})`)
  t.match(await (await authed(t, app)).request('echo.text', { text: 'x' }), { ok: true }, 'a fresh connection works')
})

t.test('a reader that stops reading is closed; the server is unharmed', async (t) => {
  const spy = { calls: 0 }
  const app = await appWith(t, spy, { maxBufferedBytes: 256 * 1024 }, { groups: () => 'feed' })
  const reader = await authed(t, app, 'reader')
  const slow = await rawClient(app, '/ws', tokenFor(app, 'slow'))
  t.teardown(() => { slow.sock.destroy() })
  slow.sock.pause() // never read again: the kernel buffers fill, then ws's
  await eventually(() => app.wsx.connections.size, (n) => n >= 2, { what: 'both connections' })
  t.equal(app.wsx.connections.size, 2)

  const slowConn = [...app.wsx.connections].find((c) => (c.user as { sub: string }).sub === 'slow')!
  const blob = 'x'.repeat(64 * 1024)
  let sent = 0
  let gone = false
  slow.closed.then(() => { gone = true }, () => {})
  // broadcast until the server gives up on the slow reader (kernel buffers hold a few MB first)
  while (slowConn.socket.readyState === 1 && sent < 1000) {
    await app.wsx.broadcast('feed', 'feed.big', { blob })
    if (++sent % 16 === 0) await sleep(1)
  }
  t.equal(slowConn.socket.readyState, 2, `the server started closing the slow reader after ${sent} frames`)
  // the close frame waits behind the backlog too; the server terminates after a grace
  await eventually(() => app.wsx.connections.size, (n) => n <= 1, { what: 'the slow reader to be dropped' })
  t.equal(app.wsx.connections.size, 1, 'and dropped it')
  // its FIN waits behind the data it never read: once it reads, it sees the end
  slow.sock.resume()
  await t.resolves(eventually(() => gone, { what: 'the TCP socket to close' }), 'its TCP socket was closed by the server')

  // the reader in the same group got what was sent, and the server still answers
  t.match(await reader.request('echo.text', { text: 'fine' }), { ok: true, data: { text: 'fine' } })
  t.equal(reader.frames.filter((f) => f.action === 'feed.big').length, sent, 'the reading member got every frame')
  const fresh = await authed(t, app, 'fresh')
  t.match(await fresh.request('echo.text', { text: 'x' }), { ok: true })
})

t.test('heartbeat: a peer that never answers pings is terminated', async (t) => {
  const app = await appWith(t, { calls: 0 }, { heartbeatMs: 100 })
  const mute = await rawClient(app, '/ws', tokenFor(app, 'mute'))
  t.teardown(() => { mute.sock.destroy() })
  mute.sock.resume() // reads, but never sends a pong
  const polite = await authed(t, app, 'polite')
  const started = Date.now()
  await Promise.race([mute.closed, sleep(2000)])
  const took = Date.now() - started
  t.ok(mute.sock.destroyed || mute.sock.readableEnded, `the mute peer was dropped (${took} ms)`)
  t.ok(took < 1500)
  t.ok(polite.isOpen, 'a peer that answers pings stays')
  t.match(await polite.request('echo.text', { text: 'x' }), { ok: true })
})
