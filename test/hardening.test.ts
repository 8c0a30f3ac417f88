// Limits that must hold on every socket the plugin owns, against real servers (raw TCP
// sockets where a well-behaved client cannot reproduce the abuse): low-level sockets are
// bounded both ways, counted, pinged, drained and measured; every frame but socket.ping
// spends the message budget; a refused subscribe leaves nothing behind; boot refuses what
// cannot work; the drain is logged once; the test and typed clients do not hang or lie.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { connect as tcpConnect, type AddressInfo, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import { WebSocket } from 'ws'
import { build, tokenFor, verifyJwt } from './helpers/build.js'
import { eventually } from './helpers/eventually.js'
import { connect, UpgradeRefusedError, type TestClient } from '../testing/index.js'
import { createClient } from '../client/index.js'
import wsx, { action, defineChannel, Type } from '../index.js'
import type { Connection } from '../lib/connection/connection.js'
import type { WsxPluginOptions } from '../types/options.js'

/** A masked client frame (text by default) of any length, as a browser would send it. */
function clientFrame (payload: Buffer, opcode = 0x1): Buffer {
  const mask = randomBytes(4)
  const masked = Buffer.alloc(payload.length)
  for (let i = 0; i < payload.length; i++) masked[i] = payload[i]! ^ mask[i % 4]!
  let header: Buffer
  if (payload.length < 126) {
    header = Buffer.from([0x80 | opcode, 0x80 | payload.length])
  } else if (payload.length < 65536) {
    header = Buffer.from([0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff])
  } else {
    header = Buffer.alloc(10)
    header[0] = 0x80 | opcode
    header[1] = 0x80 | 127
    header.writeBigUInt64BE(BigInt(payload.length), 2)
  }
  return Buffer.concat([header, mask, masked])
}

/** A raw TCP client that completes the upgrade and then does only what the test says. */
async function rawUpgrade (t: Test, app: FastifyInstance, path: string, headers: string[] = []): Promise<{ sock: Socket, closed: Promise<void> }> {
  if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  const sock = tcpConnect(port, '127.0.0.1')
  sock.on('error', () => {})
  t.teardown(() => { sock.destroy() })
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    let head = ''
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1')
      if (!head.includes('\r\n\r\n')) return
      sock.off('data', onData)
      sock.pause()
      if (head.startsWith('HTTP/1.1 101')) resolve()
      else reject(new Error(head.split('\r\n')[0]))
    }
    sock.on('data', onData)
    sock.write([
      `GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, ...headers, '', ''
    ].join('\r\n'))
  })
  return { sock, closed }
}

async function echoApp (t: Test, opts: WsxPluginOptions = {}): Promise<FastifyInstance> {
  const app = await build(t, { wsx: { connectionRateLimit: false, ...opts } })
  app.wsx.socket('/ws/echo', async (socket) => {
    for await (const m of socket) {
      if (m.type === 'text') socket.sendText(`Echo: ${m.data}`)
      else socket.sendBytes(m.data)
    }
  })
  return app
}

/** HTTP status of a refused upgrade, or 0 when accepted (the client is then kept open). */
async function upgradeStatus (t: Test, app: FastifyInstance, path: string, token?: string): Promise<number> {
  try {
    const c = await connect(app, path, token === undefined ? {} : { token })
    t.teardown(() => c.close())
    return 0
  } catch (err) {
    return err instanceof UpgradeRefusedError ? err.statusCode : -1
  }
}

t.test('1: a low-level peer that writes and never reads is closed; the server never buffers past maxBufferedBytes', async (t) => {
  const maxBufferedBytes = 256 * 1024
  const app = await echoApp(t, { maxBufferedBytes, maxPayload: 128 * 1024 })
  const { sock } = await rawUpgrade(t, app, '/ws/echo')
  // never read again: the echoes pile up in the kernel buffers, then in ws's
  const frame = clientFrame(Buffer.alloc(100 * 1024, 'x'))
  let peak = 0
  let sentBytes = 0
  const serverSocket = () => [...app.websocketServer.clients][0]
  await t.resolves(eventually(() => serverSocket()?.readyState, (state) => state === WebSocket.OPEN, { what: 'the server side to open' }), 'the server side is open')
  while (serverSocket()?.readyState === WebSocket.OPEN && sentBytes < 64 * 1024 * 1024) {
    if (!sock.write(frame)) await Promise.race([new Promise((resolve) => sock.once('drain', resolve)), sleep(50)])
    sentBytes += frame.length
    peak = Math.max(peak, serverSocket()?.bufferedAmount ?? 0)
    await sleep(0)
  }
  t.ok(sentBytes < 64 * 1024 * 1024, `the server closed the socket after ${sentBytes} bytes sent, well before 64 MB`)
  await t.resolves(eventually(() => app.websocketServer.clients.size, (size) => size === 0, { what: 'the socket to be dropped' }), 'and dropped it once its close frame could not get through')
  // the check runs before each write, so one echo may land past the cap, never more
  t.ok(peak <= maxBufferedBytes + 2 * 100 * 1024 + 1024, `the server-side backlog peaked at ${peak} bytes`)
  t.equal(app.wsx.stats().connections.open, 0, 'and no longer counts it')

  // the server still serves others
  const c = await connect(app, '/ws/echo')
  t.teardown(() => c.close())
  c.sendRaw('still here')
  t.strictSame(await c.next(), { text: 'Echo: still here' })
})

t.test('1: unread inbound frames on a low-level socket are bounded in bytes (maxQueuedBytes), not only in messages', async (t) => {
  const app = await build(t, { wsx: { connectionRateLimit: false, maxQueuedBytes: 512 * 1024 } })
  let handlerSaw = 0
  app.wsx.socket('/ws/sink', async (socket) => {
    const { code } = await socket.closed // reads nothing until the socket closed
    handlerSaw = code
  })
  const c = await connect(app, '/ws/sink')
  const chunk = 'y'.repeat(60 * 1024)
  // 20 frames of 60 KB: far below the message cap (256), over 512 KiB of bytes
  for (let i = 0; i < 20 && c.isOpen; i++) c.sendRaw(chunk)
  t.strictSame(await c.closed(), { code: 1013, reason: 'Too many unread messages' })
  await t.resolves(eventually(() => handlerSaw, (code) => code !== 0, { what: 'the handler to see the close' }), 'the handler learned the socket closed')
})

t.test('1: the unread-bytes count of a low-level socket does not drift with non-ASCII text', async (t) => {
  const app = await build(t, { wsx: { connectionRateLimit: false, maxPayload: 16 * 1024, maxQueuedBytes: 32 * 1024 } })
  app.wsx.socket('/ws/slow-echo', async (socket) => {
    for await (const m of socket) {
      await sleep(20) // reads slower than the client writes: frames wait in the queue
      if (m.type === 'text') socket.sendText(`length ${m.data.length}`)
    }
  })
  const c = await connect(app, '/ws/slow-echo')
  t.teardown(() => c.close())
  const text = 'é'.repeat(2000) // 2 000 UTF-16 units, 4 000 bytes
  // 12 rounds of 4 frames: at most 16 000 bytes wait at once, 192 000 pass in total
  for (let round = 0; round < 12; round++) {
    for (let i = 0; i < 4; i++) c.sendRaw(text)
    for (let i = 0; i < 4; i++) t.strictSame(await c.next(undefined, 5000), { text: 'length 2000' }, `round ${round + 1}, frame ${i + 1}`)
  }
  t.ok(c.isOpen, 'never closed for unread bytes that were read long ago')
})

t.test('1: an envelope connection\'s queue is bounded in bytes too', async (t) => {
  const app = await build(t, { wsx: { connectionRateLimit: false, maxPayload: 64 * 1024, maxQueuedBytes: 128 * 1024 } })
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  t.teardown(() => release())
  app.wsx.route({
    url: '/ws',
    authenticate: [verifyJwt],
    actions: {
      'slow.op': action({ handler: async () => { await held; return {} } }),
      'echo.any': action({ handler: async (msg) => msg.data })
    }
  })
  const c = await connect(app, '/ws', { token: tokenFor(app, 'alice') })
  await c.next('socket.authorized')
  c.send({ id: 'slow', action: 'slow.op' }) // holds the connection's only slot
  const blob = 'z'.repeat(60 * 1024)
  // 3 frames of 60 KB wait behind it: 3 messages (far below maxQueued), over 128 KiB
  for (let i = 0; i < 3; i++) c.send({ id: `big${i}`, action: 'echo.any', data: { blob } })
  t.strictSame(await c.closed(), { code: 1013, reason: 'Too many queued messages' })
})

t.test('2: low-level sockets count against maxConnectionsPerIp and maxConnections, with envelope connections', async (t) => {
  const perIp = await echoApp(t, { maxConnectionsPerIp: 3 })
  for (let i = 0; i < 3; i++) t.equal(await upgradeStatus(t, perIp, '/ws/echo'), 0, `socket ${i + 1} accepted`)
  t.equal(await upgradeStatus(t, perIp, '/ws/echo'), 429, 'the 4th from the same address is refused')

  const capped = await echoApp(t, { maxConnections: 2 })
  capped.wsx.route({ url: '/ws/chat', authenticate: [verifyJwt], actions: { 'x.y': action({ handler: async () => ({}) }) } })
  t.equal(await upgradeStatus(t, capped, '/ws/chat', tokenFor(capped, 'alice')), 0, 'an envelope connection')
  t.equal(await upgradeStatus(t, capped, '/ws/echo'), 0, 'a low-level socket')
  t.equal(await upgradeStatus(t, capped, '/ws/echo'), 503, 'the instance cap counts both kinds')
  t.equal(await upgradeStatus(t, capped, '/ws/chat', tokenFor(capped, 'bob')), 503)
  t.equal(capped.wsx.stats().connections.open, 2)
})

t.test('2: the heartbeat reaps a low-level peer that never answers pings, and keeps one that does', async (t) => {
  const app = await echoApp(t, { heartbeatMs: 100 })
  const mute = await rawUpgrade(t, app, '/ws/echo')
  mute.sock.resume() // reads (and discards) the pings, never sends a pong
  const polite = await connect(app, '/ws/echo') // ws answers pings by itself
  t.teardown(() => polite.close())
  let gone = false
  mute.closed.then(() => { gone = true }, () => {})
  await t.resolves(eventually(() => gone, { what: 'the mute peer to be terminated' }), 'the mute peer was terminated')
  t.ok(polite.isOpen, 'the polite one stays')
  polite.sendRaw('hi')
  t.strictSame(await polite.next(), { text: 'Echo: hi' })
  t.equal(app.wsx.stats().connections.open, 1)
})

t.test('2: low-level sockets show in the stats and are drained with 1001 on close()', async (t) => {
  const app = await echoApp(t)
  const a = await connect(app, '/ws/echo')
  const b = await connect(app, '/ws/echo')
  a.sendRaw('one')
  await a.next()
  const stats = app.wsx.stats()
  t.equal(stats.connections.open, 2)
  t.equal(stats.connections.byRoute['/ws/echo'], 2, 'per route')
  t.ok(stats.messages.in >= 1 && stats.messages.out >= 1, 'frames in and out are counted')
  const codes = Promise.all([a.closed(), b.closed()])
  await app.close()
  t.strictSame((await codes).map((c) => c.code), [1001, 1001], 'both saw 1001, not 1005 or 1006')
  t.equal(app.wsx.stats().closes['1001'], 2)
})

async function budgetApp (t: Test): Promise<FastifyInstance> {
  const app = await build(t, { wsx: { connectionRateLimit: false, maxThrottledInARow: 1000, maxBadFrames: 1000 } })
  app.wsx.route({
    url: '/ws',
    authenticate: [verifyJwt],
    messageRateLimit: { max: 5, timeWindow: 60_000 },
    actions: {
      'public.hello': action({ public: true, handler: async () => ({ hello: true }) }),
      'secret.op': action({ handler: async () => ({ ok: true }) })
    }
  })
  return app
}

async function codesOf (c: TestClient, action: string, n: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const reply = await c.request(action)
    out.push(reply.ok === true ? 'ok' : reply.error!.code)
  }
  return out
}

t.test('3: not_found after authentication spends the message budget', async (t) => {
  const app = await budgetApp(t)
  const c = await connect(app, '/ws', { token: tokenFor(app, 'alice') })
  t.teardown(() => c.close())
  await c.next('socket.authorized')
  t.strictSame(await codesOf(c, 'no.such', 8), ['not_found', 'not_found', 'not_found', 'not_found', 'not_found', 'throttled', 'throttled', 'throttled'])
  t.strictSame(await codesOf(c, 'socket.ping', 10), Array(10).fill('ok'), 'socket.ping is the one frame that does not count')
  t.strictSame(await codesOf(c, 'secret.op', 1), ['throttled'], 'the budget is shared by every action')
})

t.test('3: not_authenticated before authentication, and bad frames, spend the budget too', async (t) => {
  const app = await budgetApp(t)
  const anon = await connect(app, '/ws')
  t.teardown(() => anon.close())
  await anon.next('socket.handshake')
  t.strictSame(await codesOf(anon, 'secret.op', 7), ['not_authenticated', 'not_authenticated', 'not_authenticated', 'not_authenticated', 'not_authenticated', 'throttled', 'throttled'])
  t.strictSame(await codesOf(anon, 'public.hello', 1), ['throttled'])

  const c = await connect(app, '/ws', { token: tokenFor(app, 'bob') })
  t.teardown(() => c.close())
  await c.next('socket.authorized')
  for (let i = 0; i < 3; i++) {
    c.sendRaw(`{"id":"bad${i}","action":"secret..op"}`)
    t.match(await c.next(), { id: `bad${i}`, ok: false, error: { code: 'parse_error' } })
  }
  t.strictSame(await codesOf(c, 'secret.op', 4), ['ok', 'ok', 'throttled', 'throttled'], '3 bad frames + 2 answers = the budget of 5')
  c.sendRaw('{"id":"bad9","action":"x..y"}')
  t.match(await c.next(), { id: 'bad9', ok: false, error: { code: 'throttled' } }, 'past the budget a bad frame is answered throttled')
})

t.test('4: a channel.subscribe refused at maxGroupsPerConnection leaves no subscription behind', async (t) => {
  const app = await build(t, { wsx: { connectionRateLimit: false, maxGroupsPerConnection: 2 } })
  app.wsx.route({
    url: '/ws',
    authenticate: [verifyJwt],
    channels: { room: defineChannel({ params: Type.Object({ room: Type.String() }) }) },
    actions: {}
  })
  const c = await connect(app, '/ws', { token: tokenFor(app, 'alice') })
  t.teardown(() => c.close())
  await c.next('socket.authorized')
  const conn = [...app.wsx.connections][0] as unknown as Connection
  const subscribe = (room: string) => c.request('channel.subscribe', { channel: 'room', params: { room } })
  t.match(await subscribe('a'), { ok: true })
  t.match(await subscribe('b'), { ok: true })
  t.match(await subscribe('c'), { ok: false, error: { code: 'validation_error' } }, 'a third group is refused')
  t.strictSame([...conn.subscriptions.keys()], ['room:a', 'room:b'], 'the refused one left no entry')
  t.strictSame([...conn.groups], ['room:a', 'room:b'])
  t.match(await c.request('channel.unsubscribe', { channel: 'room', params: { room: 'a' } }), { ok: true })
  t.match(await subscribe('c'), { ok: true }, 'with room again, it is accepted')
  t.strictSame([...conn.subscriptions.keys()].sort(), ['room:b', 'room:c'])
})

t.test('6: registering @fastify/websocket before fastify-wsx fails at boot with a coded error', async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close().catch(() => {}))
  await app.register(websocket)
  await t.rejects(async () => { await app.register(wsx) }, { code: 'WSX_ERR_WEBSOCKET_REGISTERED' })
})

t.test('6: with fastify-wsx registering @fastify/websocket, the app\'s own websocket routes still drain with 1001', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(wsx, { heartbeatMs: 0 })
  app.get('/plain', { websocket: true }, (socket) => { socket.on('message', (m: Buffer) => socket.send(m.toString())) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const ws = new WebSocket(`ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/plain`)
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  await app.close()
  t.equal(await closed, 1001)
})

t.test('7: "wsx: connections drained" is logged once per close', async (t) => {
  const lines: Array<{ msg?: string }> = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as { msg?: string })
      done()
    }
  })
  const logged = await build(t, { fastify: { logger: { level: 'info', stream } }, wsx: { connectionRateLimit: false } })
  logged.wsx.socket('/ws/echo', async (socket) => { await socket.closed })
  const c = await connect(logged, '/ws/echo')
  const closed = c.closed()
  await logged.close()
  await closed
  t.equal(lines.filter((l) => l.msg === 'wsx: connections drained').length, 1)
})

t.test('8: a route maxPayload above the plugin\'s fails at boot; equal or lower is accepted', async (t) => {
  const app = await build(t, { wsx: { maxPayload: 1024 } })
  const route = (maxPayload: number, url: string) => app.wsx.route({ url, maxPayload, actions: { 'p.q': action({ public: true, handler: async () => ({}) }) } })
  t.throws(() => route(2048, '/big'), { code: 'WSX_ERR_ROUTE_INVALID', message: /maxPayload 2048 exceeds the plugin's maxPayload 1024/ })
  t.throws(() => route(0, '/zero'), { code: 'WSX_ERR_ROUTE_INVALID' })
  t.doesNotThrow(() => route(1024, '/same'))
  t.doesNotThrow(() => route(512, '/small'))
  await t.rejects(build(t, { wsx: { maxPayload: 1024, websocket: { options: { maxPayload: 4096 } } } }), { code: 'WSX_ERR_OPTS_INVALID' }, 'the WebSocket server cannot be given another limit')
  await t.rejects(build(t, { wsx: { maxPayload: 1024, maxQueuedBytes: 512 } }), { code: 'WSX_ERR_OPTS_INVALID' }, 'a queue smaller than one frame')
})

t.test('9: the test client\'s request() rejects as soon as the socket closed, not at its timeout', async (t) => {
  const app = await build(t, { wsx: { connectionRateLimit: false } })
  app.wsx.route({
    url: '/ws',
    authenticate: [verifyJwt],
    actions: { 'bye.now': action({ handler: async (_msg, conn) => { conn.close(4000, 'bye'); return new Promise<never>(() => {}) } }) }
  })
  const c = await connect(app, '/ws', { token: tokenFor(app, 'alice') })
  await c.next('socket.authorized')
  // a long timeout: the rejection must come from the close, and say so
  await t.rejects(c.request('bye.now', undefined, { timeoutMs: 50_000 }), /the socket closed \(\{"code":4000,"reason":"bye"\}\)/, 'pending when the socket closed')
  await t.rejects(c.request('bye.now', undefined, { timeoutMs: 50_000 }), /the socket closed/, 'sent after it closed')
  await t.rejects(c.next('anything', 50_000), /the socket closed/)
})

t.test('9: the typed client after a failed handshake is "unauthenticated", not "ready"; authorize() makes it ready', async (t) => {
  const app = await build(t, { wsx: { connectionRateLimit: false } })
  app.wsx.route({
    url: '/ws',
    authenticate: [verifyJwt],
    actions: {
      'public.hello': action({ public: true, handler: async () => ({ hello: true }) }),
      'who.ami': action({ handler: async (_msg, conn) => ({ sub: (conn.user as { sub: string }).sub }) })
    }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = createClient(`ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/ws`, { WebSocket, token: 'not-a-jwt', reconnect: false })
  t.teardown(() => client.close())
  await t.rejects(client.ready(), { code: 'authentication_failed' })
  t.equal(client.state, 'unauthenticated')
  t.strictSame(await client.request('public.hello' as never), { hello: true }, 'public actions still flow')
  await t.rejects(client.request('who.ami' as never), { code: 'not_authenticated' })
  t.strictSame(await client.authorize(tokenFor(app, 'carol')), { via: 'authorize' })
  t.equal(client.state, 'ready')
  t.strictSame(await client.ready(), { via: 'authorize' }, 'ready() now reports the success')
  t.strictSame(await client.request('who.ami' as never), { sub: 'carol' })
})
