// Decoding inbound text frames. JSON.parse keeps `__proto__` as an own key and happily
// builds 10k-deep arrays that later blow up JSON.stringify and msgpack (PITFALLS 8, 9),
// so depth is bounded before parsing and prototype keys are refused by secure-json-parse.
import sjson from 'secure-json-parse'

const OPEN_BRACE = 123
const OPEN_BRACKET = 91
const CLOSE_BRACE = 125
const CLOSE_BRACKET = 93
const QUOTE = 34
const BACKSLASH = 92

/** True when `text` nests objects/arrays deeper than `max` (strings are skipped). */
export function exceedsDepth (text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
    } else if (c === QUOTE) {
      inString = true
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) return true
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--
    }
  }
  return false
}

const parseOptions = { protoAction: 'error', constructorAction: 'error' } as const

/**
 * Parses one JSON text frame. Throws a SyntaxError for invalid JSON, prototype keys
 * (`__proto__`, `constructor.prototype`) or nesting deeper than `maxDepth`.
 */
export function decodeFrame (text: string, maxDepth: number): unknown {
  if (exceedsDepth(text, maxDepth)) throw new SyntaxError('nesting too deep')
  return sjson.parse(text, undefined, parseOptions)
}
