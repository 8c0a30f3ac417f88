// Durations as @fastify/rate-limit takes them: milliseconds, or a string such as
// '10 seconds' or '1 minute', parsed by the same package rate-limit uses.
import { parse } from '@lukeed/ms'
import { errors } from '../errors.js'

export function toMilliseconds (value: number | string): number {
  const result = typeof value === 'number' ? value : parse(value)
  if (typeof result !== 'number' || !Number.isFinite(result) || result <= 0) {
    throw new errors.WSX_ERR_OPTS_INVALID(`"${String(value)}" is not a duration`)
  }
  return result
}
