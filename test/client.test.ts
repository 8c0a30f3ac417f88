// The typed client over real sockets. The server side is a small real `ws` WebSocketServer
// speaking the frames of docs/protocol.md, so each test controls exactly what the server
// sends and with which close code (the reconnect rules depend on it).
import t from 'tap'
import { once } from 'node:events'
import { readdir, readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import type { IncomingMessage } from 'node:http'
import { WebSocket, WebSocketServer } from 'ws'
import { backoffDelay, createClient, WsxClientError, type ClientOptions, type WsxClient } from '../client/index.js'
import { chatRoute } from './fixtures/client-route.js'
import { build, tokenFor, verifyJwt } from './helpers/build.js'
import { eventually } from './helpers/eventually.js'

type Frame = Record<string, any>
/** What the helpers need of a tap test. */
interface Test { teardown (fn: () => unknown): void }

/** One server-side connection: its frames in order, without losing early ones. */
class Peer {
  readonly frames: Frame[] = []
  readonly #buffer: Frame[] = []
  readonly #waiters: Array<(frame: Frame) => void> = []
  readonly closed: Promise<void>

  constructor (readonly ws: WebSocket, readonly req: IncomingMessage) {
    ws.on('message', (raw) => {
      const frame = JSON.parse(String(raw)) as Frame
      this.frames.push(frame)
      const waiter = this.#waiters.shift()
      if (waiter) waiter(frame)
      else this.#buffer.push(frame)
    })
    this.closed = once(ws, 'close').then(() => {})
  }

  /** The next frame the client sent. */
  next (): Promise<Frame> {
    const frame = this.#buffer.shift()
    if (frame) return Promise.resolve(frame)
    return new Promise((resolve) => this.#waiters.push(resolve))
  }

  send (frame: Frame): void {
    this.ws.send(JSON.stringify(frame))
  }

  handshake (): void {
    this.send({ action: 'socket.handshake', data: { authorize: 'socket.authorize', attempts: 2, lock_seconds: 20, timeout_seconds: 20, allow_unauth: ['public.ping'] } })
  }

  /** Greets with a handshake and accepts the next `socket.authorize` when its token is in `tokens`. */
  async handshakeAndAuthorize (tokens: string[] = ['good']): Promise<Frame> {
    this.handshake()
    const frame = await this.next()
    if (frame.action !== 'socket.authorize') throw new Error(`expected socket.authorize, got ${frame.action}`)
    this.answerAuthorize(frame, tokens)
    return frame
  }

  answerAuthorize (frame: Frame, tokens: string[]): void {
    if (tokens.includes(frame.data?.token)) {
      this.send({ id: frame.id, action: 'socket.authorized', data: { authenticated: true, via: 'authorize' } })
    } else {
      this.send({ id: frame.id, ok: false, error: { code: 'authentication_failed', detail: 'Invalid token.', attempts_left: 1 } })
    }
  }

  reply (frame: Frame, data: unknown): void {
    this.send({ id: frame.id, ok: true, data, trace_id: frame.trace_id ?? 'srv-trace' })
  }
}

interface TestServer {
  url: string
  peers: Peer[]
  /** Resolves with the next connection (or an already accepted one not yet taken). */
  nextPeer (): Promise<Peer>
}

async function startServer (t: Test, onPeer?: (peer: Peer, n: number) => void): Promise<TestServer> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await once(wss, 'listening')
  const peers: Peer[] = []
  const unclaimed: Peer[] = []
  const waiters: Array<(peer: Peer) => void> = []
  wss.on('connection', (ws, req) => {
    const peer = new Peer(ws, req)
    peers.push(peer)
    onPeer?.(peer, peers.length)
    const waiter = waiters.shift()
    if (waiter) waiter(peer)
    else unclaimed.push(peer)
  })
  t.teardown(async () => {
    for (const ws of wss.clients) ws.terminate()
    await new Promise<void>((resolve) => wss.close(() => resolve()))
  })
  const { port } = wss.address() as AddressInfo
  return {
    url: `ws://127.0.0.1:${port}/ws/chat/general`,
    peers,
    nextPeer: () => {
      const peer = unclaimed.shift()
      if (peer) return Promise.resolve(peer)
      return new Promise((resolve) => waiters.push(resolve))
    }
  }
}

const FAST_RECONNECT = { minDelayMs: 20, maxDelayMs: 200, jitter: 0 }

function connect (t: Test, url: string, opts: ClientOptions = {}): WsxClient<typeof chatRoute> {
  const client = createClient<typeof chatRoute>(url, { WebSocket, reconnect: FAST_RECONNECT, requestTimeoutMs: 2000, ...opts })
  t.teardown(() => client.close())
  return client
}

/** Rejects instead of hanging when `promise` takes longer than `ms`: a failure shows at once. */
function within<T> (promise: Promise<T>, what: string, ms = 2000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const limit = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms) })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves with the arguments of the next emission of a client event. */
function nextEvent<T> (client: WsxClient<typeof chatRoute>, event: 'close' | 'reconnecting' | 'resync' | 'expired' | 'authorized' | 'error' | 'open'): Promise<T> {
  return new Promise((resolve) => {
    const off = client.on(event, ((arg: T) => { off(); resolve(arg) }) as never)
  })
}

t.test('handshake with a token: socket.authorize is sent and ready() resolves via authorize', async (t) => {
  const server = await startServer(t)
  let calls = 0
  const client = connect(t, server.url, { token: async () => { calls++; return 'good' } })
  const authorized = nextEvent<{ via: string }>(client, 'authorized')
  const peer = await server.nextPeer()
  const frame = await peer.handshakeAndAuthorize()
  t.same(frame, { id: 1, action: 'socket.authorize', data: { token: 'good' } }, 'the seed frame, with an integer id')
  t.same(await client.ready(), { via: 'authorize' })
  t.same(await authorized, { via: 'authorize' })
  t.equal(client.state, 'ready')
  t.equal(client.via, 'authorize')
  t.equal(calls, 1, 'the token provider is called once per handshake')
})

t.test('authenticated at the upgrade: headers reach the server and no token is sent in-band', async (t) => {
  const server = await startServer(t, (peer) => {
    if (peer.req.headers.authorization === 'Bearer good') peer.send({ action: 'socket.authorized', data: { authenticated: true, via: 'upgrade' } })
    else peer.ws.close(4401)
  })
  const client = connect(t, server.url, { token: 'other', headers: { authorization: 'Bearer good' } })
  t.same(await client.ready(), { via: 'upgrade' })
  const peer = await server.nextPeer()
  const pending = client.request('chat.whoami')
  const frame = await peer.next()
  t.equal(frame.action, 'chat.whoami', 'the first frame from the client is the request, not socket.authorize')
  peer.reply(frame, { user: 'alice', role: 'user' })
  t.same(await pending, { user: 'alice', role: 'user' })
})

t.test('no token: ready() resolves via null; public actions work, protected ones answer not_authenticated', async (t) => {
  const server = await startServer(t)
  const client = connect(t, server.url)
  const peer = await server.nextPeer()
  peer.handshake()
  t.same(await client.ready(), { via: null })
  const ping = client.ping()
  const pingFrame = await peer.next()
  t.same(pingFrame, { id: 1, action: 'socket.ping' })
  peer.reply(pingFrame, { pong: true })
  t.ok(await ping >= 0, 'ping resolves with the round trip')

  const whoami = client.request('chat.whoami')
  const frame = await peer.next()
  peer.send({ id: frame.id, ok: false, error: { code: 'not_authenticated', detail: 'Authentication credentials were not provided.' } })
  const err = await whoami.catch((e: unknown) => e)
  t.ok(err instanceof WsxClientError)
  t.match(err, { code: 'not_authenticated', action: 'chat.whoami' })
})

t.test('a refused token rejects ready() with authentication_failed and attempts_left; authorize() retries', async (t) => {
  const server = await startServer(t)
  const client = connect(t, server.url, { token: 'bad' })
  const errorEvent = nextEvent<WsxClientError>(client, 'error')
  const peer = await server.nextPeer()
  await peer.handshakeAndAuthorize(['good'])
  const err = await client.ready().catch((e: unknown) => e)
  t.ok(err instanceof WsxClientError)
  t.match(err, { code: 'authentication_failed', detail: 'Invalid token.', attemptsLeft: 1, action: 'socket.authorize' })
  t.equal(await errorEvent, err, 'surfaced as an error event too')

  const retry = client.authorize('good')
  const frame = await peer.next()
  t.same(frame.data, { token: 'good' })
  peer.answerAuthorize(frame, ['good'])
  t.same(await retry, { via: 'authorize' })
  t.equal(client.via, 'authorize')
})

t.test('requests: queued until ready, increasing integer ids, trace ids, typed replies', async (t) => {
  const server = await startServer(t)
  const client = connect(t, server.url, { token: 'good' })
  // made before the socket is even open: sent after the handshake, in order
  const first = client.request('chat.send', { text: 'hello' }, { traceId: 'abc123' })
  const second = client.request('chat.send', { text: 'again' })
  const peer = await server.nextPeer()
  const auth = await peer.handshakeAndAuthorize()
  const f1 = await peer.next()
  const f2 = await peer.next()
  t.same(f1, { id: 2, action: 'chat.send', data: { text: 'hello' }, trace_id: 'abc123' })
  t.same(f2, { id: 3, action: 'chat.send', data: { text: 'again' } })
  t.ok(auth.id < f1.id && f1.id < f2.id, 'ids increase')
  // answered out of order: matched by id
  peer.reply(f2, { user: 'alice', text: 'again' })
  peer.reply(f1, { user: 'alice', text: 'hello' })
  const reply: { user: string, text: string } = await first
  t.same(reply, { user: 'alice', text: 'hello' })
  t.same(await second, { user: 'alice', text: 'again' })
})

t.test('error replies reject with WsxClientError carrying code, detail, fields, retry_after and trace id', async (t) => {
  const server = await startServer(t)
  const client = connect(t, server.url, { token: 'good' })
  const peer = await server.nextPeer()
  await peer.handshakeAndAuthorize()

  const invalid = client.request('chat.send', { text: '' }, { traceId: 't-1' })
  const f1 = await peer.next()
  peer.send({ id: f1.id, ok: false, error: { code: 'validation_error', detail: 'Invalid input.', fields: { text: ['Expected string length greater or equal to 1'] } }, trace_id: 't-1' })
  const err = await invalid.catch((e: unknown) => e)
  t.ok(err instanceof WsxClientError && err instanceof Error)
  t.same({ ...(err as WsxClientError) }, {
    name: 'WsxClientError',
    code: 'validation_error',
    detail: 'Invalid input.',
    fields: { text: ['Expected string length greater or equal to 1'] },
    traceId: 't-1',
    action: 'chat.send'
  })
  t.equal((err as Error).message, 'Invalid input.')

  const throttled = client.request('chat.send', { text: 'x' })
  const f2 = await peer.next()
  peer.send({ id: f2.id, ok: false, error: { code: 'throttled', detail: 'Request was throttled.', retry_after: 3 }, trace_id: 'srv' })
  t.match(await throttled.catch((e: unknown) => e), { code: 'throttled', retryAfter: 3, traceId: 'srv' })

  // an error for a frame without id has no request to reject: it becomes an error event
  const errorEvent = nextEvent<WsxClientError>(client, 'error')
  peer.send({ id: null, ok: false, error: { code: 'parse_error', detail: 'Malformed request.' } })
  t.match(await errorEvent, { code: 'parse_error', detail: 'Malformed request.' })
})

t.test('timeout: no reply within timeoutMs rejects with code timeout; a late reply is ignored', async (t) => {
  const server = await startServer(t)
  const client = connect(t, server.url, { token: 'good', requestTimeoutMs: 60 })
  const peer = await server.nextPeer()
  await peer.handshakeAndAuthorize()
  const started = Date.now()
  const slow = client.request('chat.whoami', {}, { traceId: 'slow-1' })
  const frame = await peer.next()
  const err = await slow.catch((e: unknown) => e)
  t.match(err, { code: 'timeout', action: 'chat.whoami', traceId: 'slow-1' })
  t.ok(Date.now() - started >= 55, 'not before the timeout')
  peer.reply(frame, { user: 'late', role: 'user' })
  const next = client.request('chat.whoami', undefined, { timeoutMs: 1000 })
  const f2 = await peer.next()
  peer.reply(f2, { user: 'alice', role: 'user' })
  t.same(await next, { user: 'alice', role: 'user' }, 'the late reply did not resolve anything else')
})

t.test('close(): pending requests reject with closed, and the client stays closed', async (t) => {
  const server = await startServer(t)
  const client = connect(t, server.url, { token: 'good' })
  const peer = await server.nextPeer()
  await peer.handshakeAndAuthorize()
  const pending = client.request('chat.whoami')
  await peer.next()
  const closeEvent = nextEvent<{ code: number, willReconnect: boolean }>(client, 'close')
  await client.close()
  t.match(await pending.catch((e: unknown) => e), { code: 'closed', action: 'chat.whoami' })
  t.match(await closeEvent, { code: 1000, willReconnect: false })
  t.equal(client.state, 'closed')
  await peer.closed
  t.match(await client.request('chat.whoami').catch((e: unknown) => e), { code: 'closed' })
  t.match(await client.connect().catch((e: unknown) => e), { code: 'closed' })
  // real time: a reconnect would be a real connection, which a fake tick could not wait for
  await sleep(60)
  t.equal(server.peers.length, 1, 'no reconnect after close()')
})

t.test('reconnect with exponential backoff after 1001 and 1013; queued requests survive, in-flight ones reject', async (t) => {
  const server = await startServer(t)
  const client = connect(t, server.url, { token: 'good' })
  const attempts: Array<{ attempt: number, delayMs: number }> = []
  const closes: Array<{ code: number, willReconnect: boolean }> = []
  client.on('reconnecting', (info) => attempts.push(info))
  client.on('close', (info) => closes.push(info))

  const p1 = await server.nextPeer()
  await p1.handshakeAndAuthorize()
  await client.ready()
  const inflight = client.request('chat.whoami')
  await p1.next()
  let closedAt = Date.now()
  p1.ws.close(1001, 'restart')
  t.match(await inflight.catch((e: unknown) => e), { code: 'closed', closeCode: 1001 }, 'at most once: not resent')
  // made while disconnected: waits for the next connection
  const queued = client.request('chat.send', { text: 'after restart' })

  // second connection: overloaded before any greeting (never ready, so the delay grows)
  const p2 = await server.nextPeer()
  t.ok(Date.now() - closedAt >= 18, 'waited the first delay')
  closedAt = Date.now()
  p2.ws.close(1013, 'overloaded')

  const p3 = await server.nextPeer()
  t.ok(Date.now() - closedAt >= 38, 'waited the doubled delay')
  await p3.handshakeAndAuthorize()
  const frame = await p3.next()
  t.same(frame.data, { text: 'after restart' })
  p3.reply(frame, { user: 'alice', text: 'after restart' })
  t.same(await queued, { user: 'alice', text: 'after restart' })
  t.same(attempts, [{ attempt: 1, delayMs: 20 }, { attempt: 2, delayMs: 40 }])
  t.match(closes, [{ code: 1001, willReconnect: true }, { code: 1013, willReconnect: true }])
  t.same(await client.ready(), { via: 'authorize' }, 'ready() follows the new connection')

  // network loss (no close frame: 1006) also reconnects, and the attempt counter was reset
  const reconnecting = nextEvent<{ attempt: number, delayMs: number }>(client, 'reconnecting')
  p3.ws.terminate()
  t.same(await reconnecting, { attempt: 1, delayMs: 20 })
  const p4 = await server.nextPeer()
  await p4.handshakeAndAuthorize()
  await client.ready()
  t.equal(server.peers.length, 4)
})

t.test('reconnect gives up after `retries` attempts in a row', async (t) => {
  const server = await startServer(t, (peer) => peer.ws.close(1013))
  const client = connect(t, server.url, { reconnect: { ...FAST_RECONNECT, retries: 2 } })
  const err = await client.ready().catch((e: unknown) => e)
  t.match(err, { code: 'closed', closeCode: 1013 })
  t.equal(client.state, 'stopped')
  t.equal(server.peers.length, 3, 'the first connection and two retries')
})

t.test('no automatic reconnect after 4401, 4403 and 4408; connect() or authorize(newToken) resumes', async (t) => {
  for (const code of [4401, 4403, 4408]) {
    await t.test(`close ${code}`, async (t) => {
      const server = await startServer(t)
      const client = connect(t, server.url, { token: 'old' })
      const p1 = await server.nextPeer()
      await p1.handshakeAndAuthorize(['old'])
      await client.ready()
      const pending = client.request('chat.whoami')
      await p1.next()
      const closeEvent = nextEvent<{ code: number, reason: string, willReconnect: boolean }>(client, 'close')
      p1.ws.close(code, 'bye')
      t.same(await closeEvent, { code, reason: 'bye', willReconnect: false })
      t.match(await pending.catch((e: unknown) => e), { code: 'closed', closeCode: code })
      t.equal(client.state, 'stopped')
      t.match(await client.ready().catch((e: unknown) => e), { code: 'closed', closeCode: code }, 'ready() reports the stop')
      t.match(await client.request('chat.whoami').catch((e: unknown) => e), { code: 'closed' }, 'requests fail fast while stopped')
      await sleep(100) // five times the reconnect delay (real time: a reconnect is a real connection)
      t.equal(server.peers.length, 1, 'did not reconnect')

      // resume: with new credentials, or explicitly
      const resumed = code === 4408 ? client.authorize('new') : client.connect()
      const p2 = await server.nextPeer()
      const frame = await p2.handshakeAndAuthorize(['old', 'new'])
      t.equal(frame.data.token, code === 4408 ? 'new' : 'old')
      t.same(await resumed, { via: 'authorize' })
      t.equal(client.state, 'ready')
    })
  }
})

t.test('channel subscriptions: typed events, restored after reconnect, unsubscribe', async (t) => {
  const server = await startServer(t)
  const client = connect(t, server.url, { token: 'good' })
  const p1 = await server.nextPeer()
  await p1.handshakeAndAuthorize()

  const events: unknown[] = []
  const metas: unknown[] = []
  client.on('chat.message', (data, meta) => metas.push({ data, meta }))
  const subscribing = client.subscribe('room', { room: 'general' }, (event) => events.push(event))
  const sub1 = await p1.next()
  t.same(sub1, { id: 2, action: 'channel.subscribe', data: { channel: 'room', params: { room: 'general' } } })
  p1.reply(sub1, {})
  const sub = await subscribing
  t.same({ channel: sub.channel, params: sub.params }, { channel: 'room', params: { room: 'general' } })

  const reconnected = nextEvent(client, 'authorized')
  p1.ws.close(1001)
  const p2 = await server.nextPeer()
  await p2.handshakeAndAuthorize()
  await reconnected
  const restored = await p2.next()
  t.match(restored, { action: 'channel.subscribe', data: { channel: 'room', params: { room: 'general' } } }, 'resubscribed after reconnect')
  p2.reply(restored, {})

  const message = { user: 'bob', text: 'hi', room: 'general' }
  p2.send({ action: 'chat.message', channel: 'room', params: { room: 'general' }, data: message })
  p2.send({ action: 'room.typing', channel: 'room', params: { room: 'other' }, data: { user: 'eve' } })
  // a ping round trip orders the check after the events above
  const ping = client.ping()
  p2.reply(await p2.next(), { pong: true })
  await ping
  t.same(events, [{ action: 'chat.message', data: message, channel: 'room', params: { room: 'general' } }], 'only this subscription\'s events reach its listener')
  t.same(metas, [{ data: message, meta: { action: 'chat.message', channel: 'room', params: { room: 'general' } } }])

  const unsubscribing = sub.unsubscribe()
  const unsub = await p2.next()
  t.same(unsub.data, { channel: 'room', params: { room: 'general' } })
  t.equal(unsub.action, 'channel.unsubscribe')
  p2.reply(unsub, {})
  await unsubscribing
  p2.send({ action: 'chat.message', channel: 'room', params: { room: 'general' }, data: message })

  // not restored any more after the next reconnect: the first frame after authorize is ours
  p2.ws.close(1001)
  const p3 = await server.nextPeer()
  await p3.handshakeAndAuthorize()
  await client.ready()
  const after = client.ping()
  const frame = await p3.next()
  t.equal(frame.action, 'socket.ping', 'no channel.subscribe after unsubscribe')
  p3.reply(frame, { pong: true })
  await after
  t.equal(events.length, 1, 'the listener got nothing after unsubscribe')
})

t.test('a subscription the server refuses rejects, and is not restored', async (t) => {
  const server = await startServer(t)
  const client = connect(t, server.url, { token: 'good' })
  const peer = await server.nextPeer()
  await peer.handshakeAndAuthorize()
  const subscribing = client.subscribe('room', { room: 'private-x' })
  const frame = await peer.next()
  peer.send({ id: frame.id, ok: false, error: { code: 'permission_denied', detail: 'You do not have permission to perform this action.' } })
  t.match(await subscribing.catch((e: unknown) => e), { code: 'permission_denied', action: 'channel.subscribe' })
})

t.test('server events, resync and expiry', async (t) => {
  const server = await startServer(t)
  const tokens = ['first', 'second']
  let calls = 0
  const client = connect(t, server.url, { token: () => tokens[calls++] ?? 'none' })
  const peer = await server.nextPeer()
  await peer.handshakeAndAuthorize(['first'])
  await client.ready()

  const notices: string[] = []
  const listener = (data: { text: string }): void => { notices.push(data.text) }
  client.on('room.notice', listener)
  peer.send({ action: 'room.notice', data: { text: 'one' } })
  const resync = nextEvent<{ groups: string[] }>(client, 'resync')
  peer.send({ action: 'socket.resync', data: { groups: ['room:general'] } })
  t.same(await resync, { groups: ['room:general'] }, 'socket.resync is surfaced to the app')
  t.same(notices, ['one'])
  client.off('room.notice', listener)
  peer.send({ action: 'room.notice', data: { text: 'two' } })

  const expired = nextEvent<{ graceSeconds: number }>(client, 'expired')
  const refreshed = nextEvent<{ via: string }>(client, 'authorized')
  peer.send({ action: 'socket.expired', data: { grace_seconds: 5 } })
  t.same(await expired, { graceSeconds: 5 })
  const frame = await peer.next()
  t.same({ action: frame.action, data: frame.data }, { action: 'socket.authorize', data: { token: 'second' } }, 'the provider was called again')
  peer.answerAuthorize(frame, ['second'])
  t.same(await refreshed, { via: 'authorize' })
  t.equal(calls, 2)
  t.same(notices, ['one'], 'off() removed the listener')
  t.equal(server.peers.length, 1, 'refreshed without reconnecting')
})

t.test('edge cases of the first frame: bad frames are reported, a non-wsx greeting makes the client ready', async (t) => {
  const server = await startServer(t, (peer) => {
    peer.ws.send('not json')
    peer.send({ action: 'room.notice', data: { text: 'first' } })
  })
  const client = connect(t, server.url, { token: 'unused' })
  const error = nextEvent<WsxClientError>(client, 'error')
  const notice = new Promise((resolve) => client.on('room.notice', (data) => resolve(data)))
  t.match(await error, { code: 'bad_frame' })
  t.same(await client.ready(), { via: null })
  t.same(await notice, { text: 'first' }, 'the greeting was an ordinary event: delivered')
  const peer = await server.nextPeer()
  t.same(peer.frames, [], 'no socket.authorize without a handshake offer')
})

t.test('a token provider that throws rejects ready() and sends nothing', async (t) => {
  const server = await startServer(t)
  const client = connect(t, server.url, { token: () => { throw new Error('login down') } })
  const peer = await server.nextPeer()
  peer.handshake()
  t.match(await client.ready().catch((e: unknown) => e), { code: 'not_authenticated', detail: /login down/ })
  t.equal(client.state, 'unauthenticated', 'a failed handshake is not ready, but still usable for public actions')
  const ping = client.ping()
  const frame = await peer.next()
  t.equal(frame.action, 'socket.ping', 'the first frame sent is not an authorize')
  peer.reply(frame, { pong: true })
  await ping
})

t.test('a slow token provider never sends an old connection\'s handshake on a new one', async (t) => {
  const server = await startServer(t)
  const releases: Array<(token: string) => void> = []
  const client = connect(t, server.url, { token: () => new Promise<string>((resolve) => releases.push(resolve)) })
  const p1 = await server.nextPeer()
  p1.handshake()
  await eventually(() => releases.length, (n) => n >= 1, { what: 'the first token request', interval: 5 })
  p1.ws.close(1001)
  const p2 = await server.nextPeer()
  p2.handshake()
  await eventually(() => releases.length, (n) => n >= 2, { what: 'the second token request', interval: 5 })
  releases[0]?.('stale')
  releases[1]?.('fresh')
  const frame = await p2.next()
  t.same(frame.data, { token: 'fresh' })
  p2.answerAuthorize(frame, ['fresh'])
  t.same(await client.ready(), { via: 'authorize' })
  t.same(p2.frames.map((f) => f.data?.token), ['fresh'], 'one authorize on the new connection')
})

t.test('a request still queued when its timeout fires is never sent', async (t) => {
  const server = await startServer(t) // never greets: the client never becomes ready
  const client = connect(t, server.url)
  const peer = await server.nextPeer()
  t.match(await client.request('chat.whoami', undefined, { timeoutMs: 40 }).catch((e: unknown) => e), { code: 'timeout', action: 'chat.whoami' })
  peer.handshake()
  await client.ready()
  const ping = client.ping()
  const frame = await peer.next()
  t.equal(frame.action, 'socket.ping', 'the timed-out request was dropped from the queue')
  peer.reply(frame, { pong: true })
  await ping
})

t.test('a subscription refused on restore is reported and dropped; a failed refresh is reported', async (t) => {
  const server = await startServer(t)
  let calls = 0
  const client = connect(t, server.url, { token: () => (calls++ < 2 ? 'good' : 'revoked') })
  const p1 = await server.nextPeer()
  await p1.handshakeAndAuthorize()
  const subscribing = client.subscribe('room', { room: 'general' })
  p1.reply(await p1.next(), {})
  await subscribing
  p1.ws.close(1001)

  const p2 = await server.nextPeer()
  const error = nextEvent<WsxClientError>(client, 'error')
  await p2.handshakeAndAuthorize()
  const restore = await p2.next()
  t.equal(restore.action, 'channel.subscribe')
  p2.send({ id: restore.id, ok: false, error: { code: 'permission_denied', detail: 'No.' } })
  t.match(await error, { code: 'permission_denied', action: 'channel.subscribe' })

  const refreshError = nextEvent<WsxClientError>(client, 'error')
  p2.send({ action: 'socket.expired', data: { grace_seconds: 1 } })
  const refresh = await p2.next()
  t.same(refresh.data, { token: 'revoked' })
  p2.answerAuthorize(refresh, ['good'])
  t.match(await refreshError, { code: 'authentication_failed', attemptsLeft: 1 })

  p2.ws.close(1001)
  const p3 = await server.nextPeer()
  await p3.handshakeAndAuthorize(['revoked'])
  await client.ready()
  const ping = client.ping()
  const frame = await p3.next()
  t.equal(frame.action, 'socket.ping', 'the refused subscription is not restored again')
  p3.reply(frame, { pong: true })
  await ping
})

t.test('against a real fastify-wsx server', async (t) => {
  const app = await build(t)
  app.register(async (scope) => {
    scope.wsx.route({ ...chatRoute, authenticate: [verifyJwt] })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const url = `ws://127.0.0.1:${port}/ws/chat/general`
  let minted = 0
  const client = connect(t, url, { token: () => { minted++; return tokenFor(app, 'alice') } })

  t.same(await client.ready(), { via: 'authorize' }, 'in-band handshake with the JWT')
  t.equal(minted, 1)
  t.same(await client.request('chat.send', { text: 'hello' }), { user: 'alice', text: 'hello' })
  t.same(await client.request('chat.whoami'), { user: 'alice', role: 'user' })
  t.equal(await client.request('math.add', { a: 2, b: 3 }), 5)
  t.ok(await client.ping() >= 0)

  const invalid = await client.request('chat.send', { text: '' }, { traceId: 'trace-invalid' }).catch((e: unknown) => e)
  t.ok(invalid instanceof WsxClientError)
  t.match(invalid, { code: 'validation_error', traceId: 'trace-invalid', fields: { text: [String] } })
  const untyped = client as unknown as WsxClient
  t.match(await untyped.request('no.such', {}).catch((e: unknown) => e), { code: 'not_found' })

  // channel subscription and a group broadcast to the channel's group
  const events: unknown[] = []
  await client.subscribe('room', { room: 'general' }, (event) => events.push(event))
  const notice = new Promise((resolve) => client.on('room.notice', (data) => resolve(data)))
  const message = { user: 'bob', text: 'hi', room: 'general' }
  await app.wsx.publish('room', { room: 'general' }, 'chat.message', message)
  // WsxEventMap may be narrowed by an app's augmentation elsewhere in the program: send untyped
  const broadcast = app.wsx.broadcast.bind(app.wsx) as (group: string, action: string, data: unknown) => Promise<void>
  await broadcast('room:general', 'room.notice', { text: 'welcome' })
  t.same(await within(notice, 'the group broadcast'), { text: 'welcome' })
  t.match(events, [{ action: 'chat.message', data: message, channel: 'room', params: { room: 'general' } }])

  // a wrong token: authentication_failed with the attempts left
  const other = connect(t, url, { token: 'not-a-jwt' })
  t.match(await other.ready().catch((e: unknown) => e), { code: 'authentication_failed', attemptsLeft: 1 })

  // authenticated at the upgrade with a header (Node only)
  const upgraded = connect(t, url, { headers: { authorization: `Bearer ${tokenFor(app, 'carol')}` } })
  t.same(await upgraded.ready(), { via: 'upgrade' })
  t.same(await upgraded.request('chat.whoami'), { user: 'carol', role: 'user' })

  // the app disconnects a user: 4403, and the client does not come back by itself
  const closed = nextEvent<{ code: number, willReconnect: boolean }>(client, 'close')
  await app.wsx.disconnectUser('alice')
  t.match(await within(closed, 'close 4403'), { code: 4403, willReconnect: false })
  t.equal(client.state, 'stopped')
  t.same(await client.connect(), { via: 'authorize' }, 'connect() resumes with a fresh token')
  t.equal(minted, 2)
  t.same(await client.request('chat.send', { text: 'back' }), { user: 'alice', text: 'back' })
})

t.test('options are checked; Node 20 has no global WebSocket', async (t) => {
  const url = 'ws://127.0.0.1:9/ws'
  if (typeof (globalThis as { WebSocket?: unknown }).WebSocket !== 'function') {
    t.throws(() => createClient(url), TypeError)
  }
  t.throws(() => createClient(url, { WebSocket, requestTimeoutMs: 0 }), TypeError)
  t.throws(() => createClient(url, { WebSocket, reconnect: { jitter: 2 } }), TypeError)
  t.throws(() => createClient(url, { WebSocket, reconnect: { minDelayMs: 100, maxDelayMs: 10 } }), TypeError)
  const client = connect(t, url, { reconnect: false })
  await t.rejects(client.request('chat.whoami', undefined, { timeoutMs: -1 }), TypeError, 'a bad timeout rejects, it does not throw')
})

t.test('network errors are reported and retried', async (t) => {
  // a port nobody listens on: refused, then retried with backoff until retries run out
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await once(wss, 'listening')
  const { port } = wss.address() as AddressInfo
  await new Promise<void>((resolve) => wss.close(() => resolve()))
  const client = connect(t, `ws://127.0.0.1:${port}/ws`, { reconnect: { ...FAST_RECONNECT, retries: 1 } })
  const errors: WsxClientError[] = []
  client.on('error', (err) => errors.push(err))
  t.match(await client.ready().catch((e: unknown) => e), { code: 'closed', closeCode: 1006 })
  t.equal(errors.length, 2, 'one error per attempt')
  t.match(errors[0], { code: 'network_error', detail: /ECONNREFUSED/ })
})

t.test('backoffDelay: doubles from minDelayMs, caps at maxDelayMs, jitter takes off at most its fraction', async (t) => {
  const opts = { minDelayMs: 100, maxDelayMs: 1000, jitter: 0 }
  t.same([1, 2, 3, 4, 5, 50, 5000].map((n) => backoffDelay(n, opts)), [100, 200, 400, 800, 1000, 1000, 1000])
  const jittered = { ...opts, jitter: 0.5 }
  t.equal(backoffDelay(3, jittered, () => 0), 400)
  t.equal(backoffDelay(3, jittered, () => 0.999999), 200)
  const samples = Array.from({ length: 200 }, () => backoffDelay(2, jittered))
  t.ok(samples.every((d) => d >= 100 && d <= 200), 'always within [100, 200]')
  t.ok(new Set(samples).size > 10, 'and spread out')
})

// msgpackr runs in browsers; only the separate MessagePack entry point may load it
const BROWSER_PACKAGES: Record<string, string[]> = { 'msgpack.ts': ['msgpackr'] }

t.test('the browser build imports nothing at runtime outside client/ and protocol/ (but msgpackr from its own entry)', async (t) => {
  const dir = new URL('../client/', import.meta.url)
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ts'))
  t.ok(files.includes('index.ts'))
  for (const file of files) {
    const source = await readFile(new URL(file, dir), 'utf8')
    const specifiers = [
      ...source.matchAll(/^\s*(?:import|export)\s+(?!type\b)[^'"]*?from\s+'([^']+)'/gm),
      ...source.matchAll(/^\s*import\s+'([^']+)'/gm)
    ].map((m) => m[1])
    for (const specifier of specifiers) {
      if (BROWSER_PACKAGES[file]?.includes(specifier!)) continue
      t.match(specifier, /^(?:\.\/[a-z-]+|\.\.\/protocol\/index)\.js$/, `${file}: runtime import of ${specifier} stays inside client/ and protocol/`)
    }
    if (file === 'index.ts') t.notOk(specifiers.includes('./msgpack.js'), 'the JSON client does not load the MessagePack codec')
    t.notMatch(source, /\bimport\(/, `${file}: no dynamic import`)
  }
  // the wire names the client shares with the server import nothing at all
  const protocol = await readFile(new URL('../protocol/index.ts', import.meta.url), 'utf8')
  t.notMatch(protocol, /^\s*(?:import|export)\b[^\n]*\bfrom\s+'|\bimport\(|\brequire\(/m, 'protocol/index.ts imports nothing')
})
