// Durations as @fastify/rate-limit takes them: milliseconds, or a string such as
// '10 seconds' or '1 minute', parsed by the same package rate-limit uses. The one parser
// of every window and ttl option.
import { parse } from '@lukeed/ms'
import { errors } from '../errors.js'

/**
 * Whole milliseconds from a number of ms or a duration string ('500 ms', '2h', ' 250 ').
 * Rounded up: Redis PEXPIRE takes integers, and a fraction would fail after the INCR and
 * leave a counter with no expiry. Throws WSX_ERR_OPTS_INVALID unless positive.
 */
export function toMilliseconds (value: number | string): number {
  const result = typeof value === 'number' ? value : parse(String(value).trim())
  if (typeof result !== 'number' || !Number.isFinite(result) || result <= 0) {
    throw new errors.WSX_ERR_OPTS_INVALID(`"${String(value)}" is not a duration`)
  }
  return Math.ceil(result)
}
