// Real Chromium, a cookie session and a route with default settings: a logged-in page's
// plain `new WebSocket(url)` is authenticated at the upgrade by the session cookie the
// browser sends by itself; its first frame is socket.authorized via "upgrade". A page with
// no session gets the in-band handshake instead.
import t, { type Test } from 'tap'
import { existsSync } from 'node:fs'
import Fastify, { type FastifyRequest } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { chromium, type Browser } from 'playwright-core'
import wsx, { action } from '../index.js'
import { freePort } from './helpers/redis.js'

const CHROMIUM = '/usr/bin/chromium'

declare module 'fastify' {
  interface Session { user?: { sub: string } }
}

async function sessionUser (request: FastifyRequest): Promise<void> {
  const user = request.session.get('user')
  if (!user) throw Object.assign(new Error('not logged in'), { statusCode: 401 })
  request.user = user
}

const page = `<!doctype html>
<meta charset="utf-8"><title>wsx session</title>
<pre id="first">waiting</pre>
<script>
  const ws = new WebSocket('ws://' + location.host + '/ws')
  ws.onmessage = (event) => {
    if (window.firstFrame === undefined) {
      window.firstFrame = JSON.parse(event.data)
      document.getElementById('first').textContent = event.data
      ws.send(JSON.stringify({ id: 1, action: 'me.get' }))
    } else if (window.reply === undefined) {
      window.reply = JSON.parse(event.data)
    }
  }
</script>`

async function startApp (t: Test) {
  const port = await freePort()
  const app = Fastify({ logger: false })
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: 'a-browser-session-secret-of-32-chars!', cookie: { secure: false } })
  await app.register(wsx, { heartbeatMs: 0 })
  app.get<{ Querystring: { user: string } }>('/login', async (request, reply) => {
    request.session.set('user', { sub: request.query.user })
    return reply.redirect('/')
  })
  app.get('/', async (_request, reply) => reply.type('text/html').send(page))
  // default settings: no handshake option, no tokenQueryParam, nothing about cookies
  app.wsx.route({
    url: '/ws',
    authenticate: [sessionUser],
    actions: { 'me.get': action({ handler: async (_msg, conn) => ({ sub: conn.user.sub }) }) }
  })
  await app.listen({ port, host: '127.0.0.1' })
  t.teardown(async () => {
    for (const c of app.websocketServer.clients) c.terminate()
    await app.close()
  })
  return `http://127.0.0.1:${port}`
}

async function launch (t: Test): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
  })
  t.teardown(() => browser.close())
  return browser
}

if (!existsSync(CHROMIUM)) {
  if (process.env.CI === 'true') {
    t.fail(`${CHROMIUM} is missing: the browser tests cannot run under CI (install Debian's chromium)`)
  } else {
    t.comment(`SKIPPING the browser session test: ${CHROMIUM} is missing (apt-get install chromium)`)
    t.plan(0, 'chromium missing')
  }
} else {
  t.test('a page with a session cookie: the first frame is socket.authorized via upgrade', async (t) => {
    const base = await startApp(t)
    const browser = await launch(t)

    const loggedIn = await (await browser.newContext()).newPage()
    loggedIn.on('pageerror', (err) => t.fail(`page error: ${err.message}`))
    await loggedIn.goto(`${base}/login?user=jane`)
    await loggedIn.waitForFunction(() => (window as { reply?: unknown }).reply !== undefined, null, { timeout: 5000 })
    t.strictSame(await loggedIn.evaluate(() => (window as { firstFrame?: unknown }).firstFrame),
      { action: 'socket.authorized', data: { authenticated: true, via: 'upgrade' } }, 'the very first frame')
    t.match(await loggedIn.evaluate(() => (window as { reply?: unknown }).reply), { id: 1, ok: true, data: { sub: 'jane' } }, 'the session user is conn.user')

    const anonymous = await (await browser.newContext()).newPage()
    await anonymous.goto(`${base}/`)
    await anonymous.waitForFunction(() => (window as { firstFrame?: unknown }).firstFrame !== undefined, null, { timeout: 5000 })
    t.match(await anonymous.evaluate(() => (window as { firstFrame?: unknown }).firstFrame), { action: 'socket.handshake' }, 'no session: the in-band handshake')
  })
}
