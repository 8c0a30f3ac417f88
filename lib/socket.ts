// The low-level socket API (django-bolt's, seed 002) for routes that want no envelope:
// receive / iterate / send text, bytes and JSON, close with a code. Frames are buffered
// from the first instant, so a handler that awaits before receiving loses nothing.
import type { FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { RawData, WebSocket } from 'ws'
import sjson from 'secure-json-parse'
import { CloseCode } from './protocol.js'

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
  readonly params: Record<string, unknown>
  readonly query: Record<string, unknown>
  readonly headers: IncomingHttpHeaders
  readonly ip: string
  readonly raw: WebSocket
  /** Resolves once the socket closed, with the close code. */
  readonly closed: Promise<{ code: number, reason: string }>
  private readonly buffered: AnyMessage[] = []
  private waiter: ((m: AnyMessage | null) => void) | null = null
  private closeCode: number | null = null
  private readonly maxBuffered: number

  constructor (ws: WebSocket, request: FastifyRequest, maxBuffered = 1024) {
    this.raw = ws
    this.params = request.params as Record<string, unknown>
    this.query = request.query as Record<string, unknown>
    this.headers = request.headers
    this.ip = request.ip
    this.maxBuffered = maxBuffered
    ws.on('message', (data: RawData, binary: boolean) => this.push(binary ? { type: 'binary', data: toBuffer(data) } : { type: 'text', data: toBuffer(data).toString('utf8') }))
    ws.on('error', () => {})
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.closeCode = code
        this.waiter?.(null)
        this.waiter = null
        resolve({ code, reason: reason.toString() })
      })
    })
  }

  private push (message: AnyMessage): void {
    if (this.waiter) {
      const w = this.waiter
      this.waiter = null
      w(message)
      return
    }
    // an app that never reads must not grow memory without bound
    if (this.buffered.length >= this.maxBuffered) return this.close(CloseCode.tryAgainLater, 'Too many unread messages')
    this.buffered.push(message)
  }

  /** The next message of either type. Rejects on close, or after `timeoutMs`. */
  receive (timeoutMs?: number): Promise<AnyMessage> {
    const next = this.buffered.shift()
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
    return sjson.parse(await this.receiveText(timeoutMs), undefined, { protoAction: 'error', constructorAction: 'error' }) as T
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

  sendText (text: string): void {
    if (this.raw.readyState === 1) this.raw.send(text)
  }

  sendBytes (data: Uint8Array): void {
    if (this.raw.readyState === 1) this.raw.send(data, { binary: true })
  }

  sendJson (value: unknown): void {
    this.sendText(JSON.stringify(value))
  }

  close (code: number = CloseCode.normal, reason = ''): void {
    try { this.raw.close(code, reason) } catch { this.raw.terminate() }
  }
}
