// Decoding inbound text frames. JSON.parse keeps `__proto__` as an own key and happily
// builds 10k-deep arrays that later blow up JSON.stringify and msgpack,
// so depth is bounded before parsing and prototype keys are refused by secure-json-parse.
import sjson from 'secure-json-parse'
import { WsxError } from '../errors.js'
import { ErrorCode } from '../../protocol/index.js'

/**
 * A frame that is valid JSON but refused (a prototype key, too deep): a `parse_error` with
 * its own detail, carrying the parsed value so the reply can still echo a readable `id`.
 * JSON.parse keeps `__proto__` as a plain own key, so reading `id` off it is safe.
 */
export class FrameRefusedError extends WsxError {
  readonly parsed: unknown
  constructor (detail: string, parsed: unknown) {
    super(ErrorCode.parse, detail)
    this.parsed = parsed
  }
}

const FORBIDDEN_KEY = 'The frame contains a forbidden key ("__proto__", or "constructor" with "prototype").'

/**
 * True when `value` nests objects/arrays deeper than `max`. Walks the parsed value (V8's
 * JSON.parse is iterative, so a deep text parses safely) and stops at the first level past
 * `max`: cheaper than scanning the text, whose length can be the whole 64 KiB frame.
 */
export function exceedsDepth (value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false
  if (max <= 0) return true
  if (Array.isArray(value)) {
    for (const item of value) if (exceedsDepth(item, max - 1)) return true
    return false
  }
  for (const key in value) {
    if (exceedsDepth((value as Record<string, unknown>)[key], max - 1)) return true
  }
  return false
}

/** secure-json-parse's options wherever untrusted JSON is read: a prototype key is an error, never stripped. */
export const SAFE_PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const

/**
 * Parses one JSON text frame. Throws a SyntaxError for invalid JSON, and a
 * FrameRefusedError for prototype keys (`__proto__`, `constructor.prototype`) or nesting
 * deeper than `maxDepth`.
 */
export function decodeFrame (text: string, maxDepth: number): unknown {
  const value: unknown = JSON.parse(text)
  // a text with no escape and neither key in it cannot smuggle a prototype key; anything
  // else gets secure-json-parse's scan of the parsed keys (escapes already decoded)
  if (typeof value === 'object' && value !== null && (text.includes('\\') || text.includes('__proto__') || text.includes('constructor'))) {
    try {
      sjson.scan(value as Record<string, unknown>, SAFE_PARSE_OPTIONS)
    } catch {
      throw new FrameRefusedError(FORBIDDEN_KEY, value)
    }
  }
  if (exceedsDepth(value, maxDepth)) throw new FrameRefusedError(`The frame nests deeper than ${maxDepth} levels.`, value)
  return value
}
