// The low-level socket API for routes that want no envelope: receive / iterate / send
// text, bytes and JSON, close with a code. Frames are buffered from the first instant, so
// a handler that awaits before receiving loses nothing. The plugin's limits hold here as on
// envelope routes: the socket counts against the connection caps, is pinged by the
// heartbeat, drained at shutdown, shows in the stats, and both directions are bounded
// (unread inbound frames by `maxQueued` / `maxQueuedBytes`, outbound by `maxBufferedBytes`).
import type { FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { RawData, WebSocket } from 'ws'
import sjson from 'secure-json-parse'
import { SAFE_PARSE_OPTIONS } from './json-codec.js'
import { CloseCode, ReadyState } from '../../protocol/index.js'
import type { Core } from '../instance/core.js'
import { closeSlowReader, isOverBuffered } from './backpressure.js'
import { heartbeatTick } from './heartbeat.js'

export interface SocketMessage { type: 'text', data: string }
export interface BinaryMessage { type: 'binary', data: Buffer }
export type AnyMessage = SocketMessage | BinaryMessage

/** Thrown by receive*() when the socket closed, or when a receive timed out. */
export class SocketClosedError extends Error {
  readonly code: number
  constructor (code: number, message = 'socket closed') {
    super(message)
    this.name = 'SocketClosedError'
    this.code = code
  }
}

function toBuffer (data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data)
}

export class WsxSocket {
  /** unique on this instance, like an envelope connection's id */
  readonly id: string
  /** the route's URL pattern (with the scope's prefix) */
  readonly url: string
  /** low-level sockets carry no identity: never counted per user */
  readonly userKey = null
  readonly params: Record<string, unknown>
  readonly query: Record<string, unknown>
  readonly headers: IncomingHttpHeaders
  readonly ip: string
  readonly raw: WebSocket
  /** Resolves once the socket closed, with the close code. */
  readonly closed: Promise<{ code: number, reason: string }>
  /** unread frames with their size on the wire (a text's UTF-16 length is not its bytes) */
  private readonly buffered: Array<{ message: AnyMessage, bytes: number }> = []
  private bufferedBytes = 0
  private waiter: ((m: AnyMessage | null) => void) | null = null
  private closeCode: number | null = null
  private closing = false
  private missedPongs = 0
  private readonly core: Core

  /** Built by `app.wsx.socket()` for each upgrade; registers itself with the plugin's core. */
  constructor (ws: WebSocket, request: FastifyRequest, core: Core, url: string) {
    this.raw = ws
    this.core = core
    this.id = core.nextConnectionId()
    this.url = url
    this.params = request.params as Record<string, unknown>
    this.query = request.query as Record<string, unknown>
    this.headers = request.headers
    this.ip = request.ip
    ws.on('message', (data: RawData, binary: boolean) => this.onFrame(toBuffer(data), binary))
    ws.on('pong', () => { this.missedPongs = 0 })
    ws.on('error', () => {})
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.closeCode = code
        this.closing = true
        core.removed(this)
        core.stats.connectionClosed(url, code)
        this.waiter?.(null)
        this.waiter = null
        resolve({ code, reason: reason.toString() })
      })
    })
    core.added(this, 'socket')
    core.stats.connectionOpened(url)
  }

  private onFrame (data: Buffer, binary: boolean): void {
    if (this.closing) return
    this.core.stats.messagesIn++
    const message: AnyMessage = binary ? { type: 'binary', data } : { type: 'text', data: data.toString('utf8') }
    if (this.waiter) {
      const w = this.waiter
      this.waiter = null
      w(message)
      return
    }
    // an app that reads slower than the peer writes must not grow memory without bound:
    // capped in messages and in bytes (maxQueued frames of maxPayload would be far too much)
    const { maxQueued, maxQueuedBytes } = this.core.config
    if (this.buffered.length >= maxQueued || this.bufferedBytes + data.length > maxQueuedBytes) {
      this.close(CloseCode.tryAgainLater, 'Too many unread messages')
      return
    }
    this.buffered.push({ message, bytes: data.length })
    this.bufferedBytes += data.length
  }

  private shift (): AnyMessage | undefined {
    const next = this.buffered.shift()
    if (next === undefined) return undefined
    this.bufferedBytes -= next.bytes
    return next.message
  }

  /** The next message of either type. Rejects on close, or after `timeoutMs`. */
  receive (timeoutMs?: number): Promise<AnyMessage> {
    const next = this.shift()
    if (next) return Promise.resolve(next)
    if (this.closeCode !== null) return Promise.reject(new SocketClosedError(this.closeCode))
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      this.waiter = (m) => {
        if (timer) clearTimeout(timer)
        if (m) resolve(m)
        else reject(new SocketClosedError(this.closeCode ?? CloseCode.normal))
      }
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiter = null
          reject(new SocketClosedError(this.closeCode ?? 0, `no message within ${timeoutMs} ms`))
        }, timeoutMs)
      }
    })
  }

  async receiveText (timeoutMs?: number): Promise<string> {
    const m = await this.receive(timeoutMs)
    if (m.type !== 'text') throw new TypeError('expected a text frame, got a binary one')
    return m.data
  }

  async receiveBytes (timeoutMs?: number): Promise<Buffer> {
    const m = await this.receive(timeoutMs)
    return m.type === 'binary' ? m.data : Buffer.from(m.data)
  }

  /** Parses the next text frame as JSON (prototype keys refused). */
  async receiveJson<T = unknown> (timeoutMs?: number): Promise<T> {
    return sjson.parse(await this.receiveText(timeoutMs), undefined, SAFE_PARSE_OPTIONS) as T
  }

  /** Iterates messages until the socket closes. */
  async * [Symbol.asyncIterator] (): AsyncGenerator<AnyMessage> {
    while (true) {
      try {
        yield await this.receive()
      } catch (err) {
        if (err instanceof SocketClosedError) return
        throw err
      }
    }
  }

  async * iterText (): AsyncGenerator<string> {
    for await (const m of this) if (m.type === 'text') yield m.data
  }

  /**
   * Sends a text frame; false when it was not sent: the socket is not open, or the peer
   * reads too slowly (over `maxBufferedBytes` unsent), in which case it is closed 1013.
   */
  sendText (text: string): boolean {
    return this.write(text, false)
  }

  /** Sends a binary frame; false when not sent (see `sendText`). */
  sendBytes (data: Uint8Array): boolean {
    return this.write(data, true)
  }

  /** Sends a value as a JSON text frame; false when not sent (see `sendText`). */
  sendJson (value: unknown): boolean {
    return this.sendText(JSON.stringify(value))
  }

  close (code: number = CloseCode.normal, reason = ''): void {
    this.closing = true
    try { this.raw.close(code, reason) } catch { this.raw.terminate() }
  }

  /** Called by the plugin's heartbeat: two missed pongs terminate the socket. */
  heartbeat (): void {
    this.missedPongs = heartbeatTick(this.raw, this.missedPongs)
  }

  private write (data: string | Uint8Array, binary: boolean): boolean {
    const ws = this.raw
    if (ws.readyState !== ReadyState.open || this.closing) return false
    if (isOverBuffered(ws, this.core.config.maxBufferedBytes)) {
      this.closing = true
      closeSlowReader(ws)
      return false
    }
    ws.send(data, { binary })
    this.core.stats.messagesOut++
    return true
  }
}
