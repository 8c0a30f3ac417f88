// The envelope (docs/protocol.md#the-envelope): parsing an inbound request in assert style, and building
// the outbound frames (reply, error, event) as strings.
import { randomBytes } from 'node:crypto'
import { ACTION_PATTERN, ErrorCode, MAX_ACTION_LENGTH, MAX_ID_LENGTH, MAX_TRACE_ID_LENGTH } from '../../protocol/index.js'
import { WsxError, type WireErrorBody } from '../errors.js'

export type MessageId = string | number | null

export interface Envelope {
  action: string
  id: MessageId
  data: Record<string, unknown>
  trace_id: string
}

const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>

function parseError (detail: string): WsxError {
  return new WsxError(ErrorCode.parse, detail)
}

/** Best effort id of a malformed request, so its error reply can still be matched. */
export function salvageId (value: unknown): MessageId {
  if (typeof value !== 'object' || value === null) return null
  const id = (value as { id?: unknown }).id
  if (typeof id === 'string' && id.length <= MAX_ID_LENGTH) return id
  if (Number.isSafeInteger(id)) return id as number
  return null
}

// Generated trace ids: a random per-process prefix and a counter. Unique within a
// deployment for practical purposes, and far cheaper per message than a UUID.
const tracePrefix = randomBytes(6).toString('hex')
let traceSeq = 0

/** A fresh trace id for a request that brought none. */
export function newTraceId (): string {
  return tracePrefix + '-' + (++traceSeq).toString(36)
}

/**
 * Checks a decoded frame against the request envelope and normalises it: `data` absent
 * or null becomes `{}`, a missing `trace_id` is generated. Throws `parse_error`.
 */
export function parseEnvelope (value: unknown): Envelope {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw parseError('A frame must be a JSON object.')
  const frame = value as Record<string, unknown>

  const action = frame.action
  if (typeof action !== 'string' || action.length === 0 || action.length > MAX_ACTION_LENGTH || !ACTION_PATTERN.test(action)) {
    throw parseError('"action" must be a dotted name of [A-Za-z0-9_] parts, at most 128 characters.')
  }

  let id: MessageId = null
  const rawId = frame.id
  if (rawId !== undefined && rawId !== null) {
    if (typeof rawId === 'string') {
      if (rawId.length > MAX_ID_LENGTH) throw parseError('"id" must be at most 128 characters.')
      id = rawId
    } else if (Number.isSafeInteger(rawId)) {
      id = rawId as number
    } else {
      throw parseError('"id" must be a string or an integer.')
    }
  }

  let data = EMPTY
  const rawData = frame.data
  if (rawData !== undefined && rawData !== null) {
    if (typeof rawData !== 'object' || Array.isArray(rawData)) throw parseError('"data" must be an object.')
    data = rawData as Record<string, unknown>
  }

  let traceId: string
  const rawTrace = frame.trace_id
  if (rawTrace === undefined || rawTrace === null) {
    traceId = newTraceId()
  } else if (typeof rawTrace === 'string' && rawTrace.length > 0 && rawTrace.length <= MAX_TRACE_ID_LENGTH) {
    traceId = rawTrace
  } else {
    throw parseError('"trace_id" must be a string of at most 128 characters.')
  }

  return { action, id, data, trace_id: traceId }
}

const quote = JSON.stringify

/** `{"id":..,"ok":true,"data":..,"trace_id":..}` with `data` already serialized. */
export function okFrame (id: MessageId, dataJson: string, traceId: string): string {
  // integer ids need no escaping; strings (client-chosen) always go through JSON.stringify
  return '{"id":' + (typeof id === 'number' ? String(id) : quote(id)) + ',"ok":true,"data":' + dataJson + ',"trace_id":' + quote(traceId) + '}'
}

/** An error reply; `id` is null when the request had none (errors are always sent). */
export function errorFrame (id: MessageId, error: WireErrorBody, traceId?: string): string {
  const frame: Record<string, unknown> = { id, ok: false, error }
  if (traceId !== undefined) frame.trace_id = traceId
  return quote(frame)
}

/** A server event `{"action":..,"data":..}`, plus `channel`/`params` for subscriptions. */
export function eventFrame (action: string, data: unknown, extra?: { channel: string, params: unknown } | { id: MessageId }): string {
  const frame: Record<string, unknown> = extra && 'id' in extra ? { id: extra.id, action } : { action }
  if (extra && 'channel' in extra) {
    frame.channel = extra.channel
    frame.params = extra.params
  }
  frame.data = data === undefined ? {} : data
  return quote(frame)
}

/**
 * A history event without its closing brace: the store appends `"offset"` and `"epoch"`
 * once it has assigned them. Route-group events name their `group`, so a client in several
 * groups knows which position each event moves; channel events carry `channel` and `params`.
 */
export function historyHead (action: string, data: unknown, where: { group: string } | { channel: string, params: unknown }): string {
  const frame: Record<string, unknown> = { action }
  if ('group' in where) frame.group = where.group
  else {
    frame.channel = where.channel
    frame.params = where.params
  }
  frame.data = data === undefined ? {} : data
  return quote(frame).slice(0, -1)
}
