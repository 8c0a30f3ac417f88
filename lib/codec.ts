// Decoding inbound text frames. JSON.parse keeps `__proto__` as an own key and happily
// builds 10k-deep arrays that later blow up JSON.stringify and msgpack (PITFALLS 8, 9),
// so depth is bounded before parsing and prototype keys are refused by secure-json-parse.
import sjson from 'secure-json-parse'

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

const parseOptions = { protoAction: 'error', constructorAction: 'error' } as const

/**
 * Parses one JSON text frame. Throws a SyntaxError for invalid JSON, prototype keys
 * (`__proto__`, `constructor.prototype`) or nesting deeper than `maxDepth`.
 */
export function decodeFrame (text: string, maxDepth: number): unknown {
  // a text with no escape and neither key in it cannot smuggle a prototype key: plain
  // JSON.parse; anything else gets secure-json-parse's full (escape-aware) check
  const value = text.includes('\\') || text.includes('__proto__') || text.includes('constructor')
    ? sjson.parse(text, undefined, parseOptions)
    : JSON.parse(text)
  if (exceedsDepth(value, maxDepth)) throw new SyntaxError('nesting too deep')
  return value
}
