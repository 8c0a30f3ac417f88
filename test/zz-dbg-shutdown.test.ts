import { test } from 'tap'
import { build, tokenFor, verifyJwt } from '/work/main/test/helpers/build.js'
import { connect } from '/work/main/lib/testing.js'
import { action } from '/work/main/index.js'
test('x', async (t) => {
  const app = await build(t, { wsx: { shutdown: { graceMs: 1000, windowMs: 300 } } })
  let mark!: () => void
  const started = new Promise<void>((r) => { mark = r })
  app.register(async (scope) => {
    scope.wsx.route({ url: '/ws/chat', authenticate: [verifyJwt], actions: { 'slow.op': action({ handler: async () => { mark(); await new Promise((r) => setTimeout(r, 300)); return { done: true } } }) } })
  })
  const c = await connect(app, '/ws/chat', { token: tokenFor(app, 'bob') })
  await c.next('socket.authorized')
  const reply = c.request('slow.op')
  await started
  console.log('closing')
  const iv0 = setInterval(() => console.log('tick', (app as any).wsx.stats().connections, (process as any)._getActiveHandles().map((h: any) => h.constructor.name)), 300); iv0.unref()
  const closing = app.close()
  if (process.env.LATE) {
    const late = await connect(app, '/ws/chat', { token: tokenFor(app, 'late') }).then(() => null, (err: unknown) => err)
    console.log('late', late)
  }
  console.log(await reply)
  console.log(await c.closed())
  const iv = setInterval(() => console.log('clients', app.websocketServer.clients.size, (process as any)._getActiveHandles().map((h: any) => h.constructor.name)), 500)
  await closing
  clearInterval(iv)
  console.log('closed')
})
