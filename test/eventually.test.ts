// The tests' own waiting helpers: eventually() polls until a probe's value passes and,
// when it does not in time, says what it last saw; the fake clock moves timers and Date
// only when told to, and leaves eventually() on the real clock.
import t from 'tap'
import { setImmediate as tick } from 'node:timers/promises'
import { eventually } from './helpers/eventually.js'

t.test('eventually resolves with the first value that passes', async (t) => {
  let n = 0
  const value = await eventually(() => ++n, (v) => v >= 3, { interval: 1 })
  t.equal(value, 3)
  t.equal(n, 3, 'and stops probing then')
})

t.test('eventually waits for an async probe, and counts a throw as not yet', async (t) => {
  let n = 0
  const value = await eventually(async () => {
    if (++n < 3) throw new Error('not up')
    return 'up'
  }, { interval: 1 })
  t.equal(value, 'up')
})

t.test('eventually fails in time, naming what it waited for and what it last saw', async (t) => {
  const started = Date.now()
  await t.rejects(eventually(() => ({ frames: [1, 2] }), (v) => v.frames.length === 3, { what: 'three frames', timeout: 50, interval: 5 }),
    { message: /timed out after 50 ms waiting for three frames; last seen: \{ frames: \[ 1, 2 \] \}/ })
  t.ok(Date.now() - started < 2000, 'gave up near its timeout')
  await t.rejects(eventually(() => { throw new Error('ECONNREFUSED') }, { what: 'redis', timeout: 20, interval: 5 }),
    { message: /waiting for redis; last probe error: ECONNREFUSED/ })
})

t.test('eventually probes again while the value does not pass (no early success)', async (t) => {
  let flag = false
  const done = eventually(() => flag, { interval: 1 })
  let settled = false
  done.then(() => { settled = true }, () => {})
  await tick()
  await tick()
  t.notOk(settled, 'still waiting while the probe answers false')
  flag = true
  t.equal(await done, true)
})
