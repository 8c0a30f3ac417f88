// Two vocabularies, kept apart: WSX_ERR_* are programmer and configuration errors
// (thrown at boot, @fastify/error); WsxError carries a protocol code to the client.
// toWireError() is the one mapping between anything thrown and what goes on the wire.
import createError from '@fastify/error'
import { Detail, ErrorCode } from '../protocol/index.js'

export const errors = {
  WSX_ERR_OPTS_INVALID: createError('WSX_ERR_OPTS_INVALID', 'Invalid fastify-wsx option: %s', 500, TypeError),
  WSX_ERR_ROUTE_INVALID: createError('WSX_ERR_ROUTE_INVALID', 'Invalid wsx route %s: %s', 500, TypeError),
  WSX_ERR_ROUTE_UNKNOWN_OPTION: createError('WSX_ERR_ROUTE_UNKNOWN_OPTION', 'Unknown option "%s" on wsx route %s', 500, TypeError),
  WSX_ERR_ROUTE_NO_AUTH: createError('WSX_ERR_ROUTE_NO_AUTH', 'wsx route %s has protected actions but no authenticate strategy; mark them public or add one', 500, TypeError),
  WSX_ERR_ACTION_NAME: createError('WSX_ERR_ACTION_NAME', 'Invalid action name "%s" on wsx route %s: dotted parts of [A-Za-z0-9_], at most 128 characters', 500, TypeError),
  WSX_ERR_ACTION_RESERVED: createError('WSX_ERR_ACTION_RESERVED', 'Action "%s" on wsx route %s is a built-in name', 500, TypeError),
  WSX_ERR_ACTION_INVALID: createError('WSX_ERR_ACTION_INVALID', 'Invalid action "%s" on wsx route %s: %s', 500, TypeError),
  WSX_ERR_SCHEMA_NOT_TYPEBOX: createError('WSX_ERR_SCHEMA_NOT_TYPEBOX', 'The %s schema of "%s" on wsx route %s is not a TypeBox schema: build it with Type from fastify-wsx or @sinclair/typebox 0.34, or with Type from typebox 1.x', 500, TypeError),
  WSX_ERR_GROUP_NAME: createError('WSX_ERR_GROUP_NAME', 'Invalid group name "%s": 1-128 characters of [A-Za-z0-9_.:@-]', 400, TypeError),
  // 400: a client asking for one group too many gets a validation_error it can act on (leave one)
  WSX_ERR_GROUP_LIMIT: createError('WSX_ERR_GROUP_LIMIT', 'A connection may be in %s groups at most: leave one before joining "%s".', 400, RangeError),
  WSX_ERR_CHANNEL_INVALID: createError('WSX_ERR_CHANNEL_INVALID', 'Invalid channel "%s" on wsx route %s: %s', 500, TypeError),
  WSX_ERR_EVENT_INVALID: createError('WSX_ERR_EVENT_INVALID', 'The data of event "%s" does not match its declared schema: %s', 500, TypeError),
  WSX_ERR_EVENT_CONFLICT: createError('WSX_ERR_EVENT_CONFLICT', 'Event "%s" is declared with two different schemas (on %s); event names are global', 500, TypeError),
  WSX_ERR_HISTORY_UNSUPPORTED: createError('WSX_ERR_HISTORY_UNSUPPORTED',
    'History (%s) needs the built-in bus: in memory without Redis, or Redis Streams with `redis`; a custom `emitter` cannot carry offsets', 500, TypeError),
  WSX_ERR_WEBSOCKET_REGISTERED: createError('WSX_ERR_WEBSOCKET_REGISTERED',
    '@fastify/websocket is already registered; fastify-wsx registers it itself so that close() drains every socket with 1001. Remove your registration and pass its options as the `websocket` option of fastify-wsx', 500),
  WSX_ERR_FRAMEWORK_CHANGED: createError('WSX_ERR_FRAMEWORK_CHANGED',
    'fastify-wsx relies on a detail of %s that the installed version does not have: %s. Install versions within the ranges of fastify-wsx\'s package.json, or report it', 500),
  WSX_ERR_NOT_READY: createError('WSX_ERR_NOT_READY', 'fastify-wsx: %s', 500),
  WSX_ERR_REDIS_UNSUITABLE: createError('WSX_ERR_REDIS_UNSUITABLE', 'The redis option cannot be used: %s', 500, TypeError),
  WSX_ERR_ASSET_INVALID: createError('WSX_ERR_ASSET_INVALID', 'The fastify-wsx file %s is missing or damaged (%s); reinstall the package', 500),
  WSX_ERR_REDIS_INTERNALS: createError('WSX_ERR_REDIS_INTERNALS',
    'fastify-wsx patches an internal of %s that is not there in the shape it expects (%s); this version is not supported, use the one package.json names', 500),
  WSX_ERR_PLAYGROUND_IN_PRODUCTION: createError('WSX_ERR_PLAYGROUND_IN_PRODUCTION',
    'The wsx playground is not registered when NODE_ENV is production; pass { enableInProduction: true } to override', 500)
} as const

/**
 * The bus could not take a frame (backend down, timed out, or closed). Not a boot error: a
 * send rejects with it at run time, and a handler that lets it through answers `server_error`.
 */
export class BusUnavailableError extends Error {
  readonly code = 'WSX_ERR_BUS_UNAVAILABLE'
  constructor (message: string, options?: { cause?: unknown }) {
    super(`fastify-wsx bus: ${message}`, options)
    this.name = 'BusUnavailableError'
  }
}

export interface WireErrorBody {
  code: ErrorCode
  detail: string
  fields?: Record<string, string[]>
  attempts_left?: number
  retry_after?: number
}

/**
 * An error a handler, permission or hook may throw to answer with a protocol code.
 * @example throw new WsxError('permission_denied', 'Not your room.')
 */
export class WsxError extends Error {
  readonly code: ErrorCode
  readonly detail: string
  readonly fields?: Record<string, string[]>
  readonly retryAfter?: number
  readonly attemptsLeft?: number

  constructor (code: ErrorCode, detail?: string, extra: { fields?: Record<string, string[]>, retryAfter?: number, attemptsLeft?: number } = {}) {
    super(detail ?? Detail[code])
    this.name = 'WsxError'
    this.code = code
    this.detail = detail ?? Detail[code]
    if (extra.fields) this.fields = extra.fields
    if (extra.retryAfter !== undefined) this.retryAfter = extra.retryAfter
    if (extra.attemptsLeft !== undefined) this.attemptsLeft = extra.attemptsLeft
  }

  toWire (): WireErrorBody {
    const body: WireErrorBody = { code: this.code, detail: this.detail }
    if (this.fields) body.fields = this.fields
    if (this.attemptsLeft !== undefined) body.attempts_left = this.attemptsLeft
    if (this.retryAfter !== undefined) body.retry_after = this.retryAfter
    return body
  }
}

const byStatus: Record<number, ErrorCode> = {
  400: ErrorCode.validation,
  401: ErrorCode.notAuthenticated,
  403: ErrorCode.permissionDenied,
  404: ErrorCode.notFound,
  429: ErrorCode.throttled
}

/**
 * Maps anything thrown to a WsxError. Fastify HTTP errors (4xx with a `statusCode`) keep
 * their meaning and their message; everything else becomes a generic `server_error`,
 * and `internal` is true so the caller logs the original.
 */
export function toWireError (err: unknown): { error: WsxError, internal: boolean } {
  if (err instanceof WsxError) return { error: err, internal: false }
  const status = typeof err === 'object' && err !== null ? (err as { statusCode?: unknown }).statusCode : undefined
  if (typeof status === 'number') {
    const code = byStatus[status]
    if (code) {
      const message = (err as { message?: unknown }).message
      return { error: new WsxError(code, typeof message === 'string' && message ? message : undefined), internal: false }
    }
  }
  return { error: new WsxError(ErrorCode.server), internal: true }
}
