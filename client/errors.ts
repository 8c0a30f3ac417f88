// The one error type the client rejects with: server error replies (docs/protocol.md#error-replies) and the
// client's own failures (timeout, closed socket, network) share it, so an app handles both
// with one `catch` and a switch on `code`.

import { ErrorCode } from '../protocol/index.js'

/** Error codes a fastify-wsx server replies with (docs/protocol.md#error-codes). */
export type ServerErrorCode = ErrorCode

/**
 * Codes the client raises itself:
 * - `timeout`: no reply within the request timeout;
 * - `closed`: the socket closed before the reply came, or the client is closed / stopped;
 * - `network_error`: the WebSocket reported an error (refused, reset, HTTP error at the upgrade);
 * - `bad_frame`: the server sent something that is not a JSON object.
 */
export type LocalErrorCode = 'timeout' | 'closed' | 'network_error' | 'bad_frame'

/** Every code a {@link WsxClientError} may carry; unknown server codes pass through as strings. */
export type ClientErrorCode = ServerErrorCode | LocalErrorCode | (string & {})

/** Extra facts an error may carry; each is omitted when the server did not send it. */
export interface WsxClientErrorExtra {
  /** `validation_error`: path → messages (`""` for the root, nested paths dotted). */
  fields?: Record<string, string[]>
  /** `throttled` / `locked`: seconds to wait before trying again. */
  retryAfter?: number
  /** `authentication_failed`: handshake attempts left before the server closes 4408. */
  attemptsLeft?: number
  /** The request's trace id, as the server echoed it: the key to the server's logs. */
  traceId?: string
  /** The action of the request that failed. */
  action?: string
  /** `closed`: the WebSocket close code, when a socket closed. */
  closeCode?: number
}

/**
 * A failed request or connection.
 * @example
 * try { await client.request('chat.send', { text }) } catch (err) {
 *   if (err instanceof WsxClientError && err.code === 'throttled') wait(err.retryAfter)
 * }
 */
export class WsxClientError extends Error {
  readonly code: ClientErrorCode
  /** The server's human sentence, or the client's own. */
  readonly detail: string
  readonly fields?: Record<string, string[]>
  readonly retryAfter?: number
  readonly attemptsLeft?: number
  readonly traceId?: string
  readonly action?: string
  readonly closeCode?: number

  constructor (code: ClientErrorCode, detail: string, extra: WsxClientErrorExtra = {}) {
    super(detail)
    this.name = 'WsxClientError'
    this.code = code
    this.detail = detail
    // only the keys that are set, so `t.same`/deep equality and logs stay clean
    if (extra.fields !== undefined) this.fields = extra.fields
    if (extra.retryAfter !== undefined) this.retryAfter = extra.retryAfter
    if (extra.attemptsLeft !== undefined) this.attemptsLeft = extra.attemptsLeft
    if (extra.traceId !== undefined) this.traceId = extra.traceId
    if (extra.action !== undefined) this.action = extra.action
    if (extra.closeCode !== undefined) this.closeCode = extra.closeCode
  }
}

/**
 * Builds a {@link WsxClientError} from the `error` object of a reply. The frame comes from
 * the network, so every field is checked rather than trusted.
 */
export function errorFromReply (error: unknown, context: { action?: string, traceId?: unknown } = {}): WsxClientError {
  const body = isObject(error) ? error : {}
  const code = typeof body.code === 'string' && body.code !== '' ? body.code : ErrorCode.server
  const detail = typeof body.detail === 'string' ? body.detail : 'The server answered with an error.'
  const extra: WsxClientErrorExtra = {}
  const fields = fieldsOf(body.fields)
  if (fields) extra.fields = fields
  if (typeof body.retry_after === 'number') extra.retryAfter = body.retry_after
  if (typeof body.attempts_left === 'number') extra.attemptsLeft = body.attempts_left
  if (typeof context.traceId === 'string') extra.traceId = context.traceId
  if (context.action !== undefined) extra.action = context.action
  return new WsxClientError(code, detail, extra)
}

function fieldsOf (value: unknown): Record<string, string[]> | undefined {
  if (!isObject(value)) return undefined
  const fields: Record<string, string[]> = {}
  for (const [path, messages] of Object.entries(value)) {
    if (Array.isArray(messages)) fields[path] = messages.filter((m): m is string => typeof m === 'string')
  }
  return fields
}

/** A plain JSON object (not null, not an array). */
export function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
