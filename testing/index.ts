// fastify-wsx/testing: a test client that speaks the envelope, so tests read like the
// protocol. It buffers every frame from the first instant (the first frame is never
// lost), resolves replies by id, waits for events, and reports close codes.
// Published as a subpath export, so production code never loads it.
import type { FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import WebSocket from 'ws'
import { Packr, Unpackr } from 'msgpackr'
import { BuiltinAction, MSGPACK_OPTIONS, MSGPACK_SUBPROTOCOL } from '../protocol/index.js'

const packr = new Packr(MSGPACK_OPTIONS.pack)
const unpackr = new Unpackr(MSGPACK_OPTIONS.unpack)

/** The envelope's encoding: JSON text frames, or MessagePack binary frames (`wsx.v1.msgpack`). */
export type Codec = 'json' | 'msgpack'

export interface Frame {
  id?: string | number | null
  ok?: boolean
  action?: string
  data?: unknown
  error?: { code: string, detail: string, fields?: Record<string, string[]>, retry_after?: number, attempts_left?: number }
  trace_id?: string
  channel?: string
  params?: Record<string, unknown>
  [key: string]: unknown
}

export interface ConnectOptions {
  headers?: Record<string, string>
  /** sent as `Authorization: Bearer <token>` at the upgrade */
  token?: string
  /** subprotocols to offer; with `codec: 'msgpack'` the default is `wsx.v1.msgpack` */
  protocols?: string | string[]
  /** `'msgpack'` offers `wsx.v1.msgpack` and speaks MessagePack in binary frames @default 'json' */
  codec?: Codec
  /** `origin` header, as a browser would send it */
  origin?: string
  /** ms to wait for the upgrade @default 5000 */
  timeoutMs?: number
  /**
   * 'listen' (default) uses a real TCP socket (the app is started on a free loopback port
   * if it is not listening); 'inject' uses `app.injectWS` (no port, but the client learns
   * close codes only when the server ends the stream).
   */
  mode?: 'listen' | 'inject'
}

export interface CloseInfo { code: number, reason: string }

type Matcher = string | ((frame: Frame) => boolean)

function matches (frame: Frame, m: Matcher | undefined): boolean {
  if (m === undefined) return true
  return typeof m === 'string' ? frame.action === m : m(frame)
}

export class TestClient {
  readonly ws: WebSocket
  /** every frame received, in order */
  readonly frames: Frame[] = []
  /** raw text frames that were not JSON (low-level routes) */
  readonly texts: string[] = []
  readonly codec: Codec
  private readonly unread: Frame[] = []
  private readonly waiters = new Set<{ m: Matcher | undefined, resolve: (f: Frame) => void, reject: (err: Error) => void }>()
  private readonly closePromise: Promise<CloseInfo>
  private closeInfo: CloseInfo | null = null
  private seq = 0

  constructor (ws: WebSocket, codec: Codec = 'json') {
    this.ws = ws
    this.codec = codec
    ws.on('message', (data, binary) => {
      if (codec === 'msgpack') this.onPacked(data as Buffer, binary)
      else this.onMessage(data.toString(), binary)
    })
    ws.on('error', () => {})
    this.closePromise = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() }
        resolve(this.closeInfo)
        // no frame can arrive any more: whoever still waits learns it now, not at its timeout
        for (const w of this.waiters) w.reject(this.closedError(w.m))
        this.waiters.clear()
      })
    })
  }

  private onMessage (text: string, binary: boolean): void {
    let frame: Frame
    try {
      frame = binary ? { binary: true, text } : JSON.parse(text)
    } catch {
      this.texts.push(text)
      frame = { text }
    }
    this.deliver(frame)
  }

  /** A MessagePack client: binary frames decode; a text frame is recorded as `{ binary: false, text }`. */
  private onPacked (data: Buffer, binary: boolean): void {
    let frame: Frame
    if (!binary) {
      frame = { binary: false, text: data.toString() }
    } else {
      try {
        frame = unpackr.unpack(data) as Frame
      } catch {
        frame = { binary: true, text: data.toString('hex') }
      }
    }
    this.deliver(frame)
  }

  private deliver (frame: Frame): void {
    this.frames.push(frame)
    for (const w of this.waiters) {
      if (matches(frame, w.m)) {
        this.waiters.delete(w)
        w.resolve(frame)
        return
      }
    }
    this.unread.push(frame)
  }

  private closedError (m: Matcher | undefined): Error {
    return new Error(`no frame${typeof m === 'string' ? ` "${m}"` : ''}: the socket closed (${JSON.stringify(this.closeInfo)})`)
  }

  /**
   * The next frame not yet consumed (optionally: with this action, or passing a filter).
   * Rejects after `timeoutMs`, or as soon as the socket has closed without such a frame.
   */
  next (m?: Matcher, timeoutMs = 2000): Promise<Frame> {
    const i = this.unread.findIndex((f) => matches(f, m))
    if (i >= 0) return Promise.resolve(this.unread.splice(i, 1)[0]!)
    if (this.closeInfo !== null) return Promise.reject(this.closedError(m))
    return new Promise((resolve, reject) => {
      const waiter = {
        m,
        resolve: (f: Frame) => {
          clearTimeout(timer)
          resolve(f)
        },
        reject: (err: Error) => {
          clearTimeout(timer)
          reject(err)
        }
      }
      const timer = setTimeout(() => {
        this.waiters.delete(waiter)
        reject(new Error(`no frame${typeof m === 'string' ? ` "${m}"` : ''} within ${timeoutMs} ms (closed: ${JSON.stringify(this.closeInfo)})`))
      }, timeoutMs)
      this.waiters.add(waiter)
    })
  }

  /** Sends a request with a fresh id and resolves its reply (success or error frame). */
  request (action: string, data?: unknown, opts: { id?: string | number, trace_id?: string, timeoutMs?: number } = {}): Promise<Frame> {
    const id = opts.id ?? `t${++this.seq}`
    const frame: Frame = { id, action }
    if (data !== undefined) frame.data = data
    if (opts.trace_id) frame.trace_id = opts.trace_id
    const reply = this.next((f) => f.id === id && (f.ok !== undefined || f.action !== undefined), opts.timeoutMs)
    // a closed socket cannot send (ws would throw while connecting, drop it once closed)
    if (this.ws.readyState === WebSocket.OPEN) this.send(frame)
    return reply
  }

  /**
   * `socket.authorize` with a token, or with other credentials (`{ api_key }`,
   * `{ username, password }`, `{ session_id }`); resolves `socket.authorized` or the error reply.
   */
  authorize (credential: string | Record<string, string>): Promise<Frame> {
    return this.request(BuiltinAction.authorize, typeof credential === 'string' ? { token: credential } : credential)
  }

  /** Sends an object in the client's codec: a JSON text frame, or a MessagePack binary frame. */
  send (frame: unknown): void {
    if (this.codec === 'msgpack') this.ws.send(packr.pack(frame), { binary: true })
    else this.ws.send(JSON.stringify(frame))
  }

  /** Sends text or bytes as they are. */
  sendRaw (data: string | Buffer, opts: { binary?: boolean } = {}): void {
    this.ws.send(data, { binary: opts.binary ?? Buffer.isBuffer(data) })
  }

  /** Resolves when the socket closed, with the close code. */
  closed (timeoutMs = 5000): Promise<CloseInfo> {
    return Promise.race([
      this.closePromise,
      new Promise<CloseInfo>((_resolve, reject) => setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs).unref())
    ])
  }

  get isOpen (): boolean {
    return this.ws.readyState === WebSocket.OPEN
  }

  close (code = 1000): Promise<CloseInfo> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code)
    else if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate()
    return this.closePromise
  }
}

/** The error a refused upgrade rejects with; `statusCode` is the HTTP answer. */
export class UpgradeRefusedError extends Error {
  readonly statusCode: number
  readonly headers: Record<string, string | string[] | undefined>
  constructor (statusCode: number, headers: Record<string, string | string[] | undefined>) {
    super(`upgrade refused with HTTP ${statusCode}`)
    this.name = 'UpgradeRefusedError'
    this.statusCode = statusCode
    this.headers = headers
  }
}

/** The `ws://` base URL of a listening app, starting it on a free loopback port if needed. */
export async function baseUrl (app: FastifyInstance): Promise<string> {
  if (!app.server.listening) await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address() as AddressInfo
  return `ws://127.0.0.1:${addr.port}`
}

/**
 * Connects a test client to `path` on `app`. Rejects with UpgradeRefusedError when the
 * upgrade is answered over HTTP (401, 403, 429...).
 * @example const c = await connect(app, '/ws/chat/general', { token }); t.match(await c.next(), { action: 'socket.authorized' })
 */
export async function connect (app: FastifyInstance, path: string, opts: ConnectOptions = {}): Promise<TestClient> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  if (opts.origin) headers.origin = opts.origin
  if (opts.mode === 'inject') {
    const protocols = protocolsOf(opts)
    if (protocols.length > 0) headers['sec-websocket-protocol'] = protocols.join(', ')
    // injectWS routes through the app's router: routes declared in plugins exist only once ready
    await app.ready()
    let client: TestClient | undefined
    try {
      await app.injectWS(path, { headers }, { onInit: (ws) => { client = new TestClient(ws as unknown as WebSocket, opts.codec) } })
    } catch (err) {
      // injectWS reports a refused upgrade only in its message; same error as the real-socket mode
      const status = /Unexpected server response: (\d+)/.exec((err as Error).message)
      if (status) throw new UpgradeRefusedError(Number(status[1]), {})
      throw err
    }
    return client!
  }
  return connectUrl((await baseUrl(app)) + path, { ...opts, headers })
}

function protocolsOf (opts: ConnectOptions): string[] {
  if (opts.protocols !== undefined) return typeof opts.protocols === 'string' ? [opts.protocols] : opts.protocols
  return opts.codec === 'msgpack' ? [MSGPACK_SUBPROTOCOL] : []
}

/** Connects to an absolute `ws://` URL (another process, a second instance). */
export function connectUrl (url: string, opts: ConnectOptions = {}): Promise<TestClient> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  if (opts.origin) headers.origin = opts.origin
  const ws = new WebSocket(url, protocolsOf(opts), { headers, handshakeTimeout: opts.timeoutMs ?? 5000 })
  const client = new TestClient(ws, opts.codec)
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client))
    ws.once('unexpected-response', (_req, res) => {
      reject(new UpgradeRefusedError(res.statusCode ?? 0, res.headers))
      ws.terminate()
    })
    ws.once('error', reject)
  })
}
