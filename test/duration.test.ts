// The one duration parser (lib/boot/duration.ts): every window, ttl and timeWindow option.
import t from 'tap'
import { toMilliseconds } from '../lib/boot/duration.js'

t.test('toMilliseconds: numbers and rate-limit strings, whole milliseconds, positive only', async (t) => {
  t.equal(toMilliseconds(1500), 1500)
  t.equal(toMilliseconds(1.2), 2, 'whole milliseconds, rounded up (Redis PEXPIRE takes integers)')
  t.equal(toMilliseconds('10 seconds'), 10_000)
  t.equal(toMilliseconds('1 minute'), 60_000)
  t.equal(toMilliseconds('500 ms'), 500)
  t.equal(toMilliseconds('2h'), 7_200_000)
  t.equal(toMilliseconds(' 250 '), 250, 'a bare number string is ms')
  for (const bad of [0, -5, Number.NaN, Infinity, '', 'soon', '0 s', '-1 minute', '10 parsecs']) {
    t.throws(() => toMilliseconds(bad), { code: 'WSX_ERR_OPTS_INVALID' }, `rejects ${String(bad)}`)
  }
})
