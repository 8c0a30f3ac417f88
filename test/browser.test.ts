// Real Chromium against the real demo: the chat page across two tabs, and the playground.
// Screenshots go to test/artifacts/ (gitignored) for a human to look at.
import t, { type Test } from 'tap'
import { existsSync, mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { chromium, type Browser, type Page } from 'playwright-core'
import { buildDemo } from '../examples/chat/app.js'

const CHROMIUM = '/usr/bin/chromium'
const artifacts = new URL('./artifacts/', import.meta.url)

if (!existsSync(CHROMIUM)) {
  if (process.env.CI === 'true') {
    t.fail(`${CHROMIUM} is missing: the browser tests cannot run under CI (install Debian's chromium)`)
  } else {
    t.comment(`SKIPPING the browser tests: ${CHROMIUM} is missing (apt-get install chromium)`)
    t.plan(0, 'chromium missing')
  }
} else {
  mkdirSync(artifacts, { recursive: true })
  await run()
}

/** A port nobody listens on now; the demo's allowed origins need it before listen(). */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function startDemo (t: Test, sendLimit = 3) {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const app = await buildDemo({ port, origins: [base], sendLimit, sendWindowSeconds: 30 }, { logger: false })
  await app.listen({ port, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, base }
}

async function launch (t: Test): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
  })
  t.teardown(() => browser.close())
  return browser
}

/** Page errors fail the test: a broken script must not pass as "nothing appeared yet". */
function watchErrors (t: Test, page: Page, name: string) {
  page.on('pageerror', (err) => t.fail(`${name}: uncaught page error: ${err.message}`))
}

async function joinChat (page: Page, base: string, user: string, room: string) {
  await page.goto(base + '/')
  await page.fill('input[name=username]', user)
  await page.fill('input[name=room]', room)
  await page.click('#login button[type=submit]')
  await page.waitForSelector(`#status:has-text("connected to room \\"${room}\\" as ${user}")`, { timeout: 5000 })
}

async function run () {
  t.test('demo page: a message sent in one tab appears in the other; throttle and validation errors are shown', async (t) => {
    const { base } = await startDemo(t)
    const browser = await launch(t)
    const context = await browser.newContext({ viewport: { width: 900, height: 700 } })
    const alice = await context.newPage()
    const bob = await context.newPage()
    watchErrors(t, alice, 'alice')
    watchErrors(t, bob, 'bob')

    await joinChat(alice, base, 'alice', 'lobby')
    await joinChat(bob, base, 'bob', 'lobby')

    await alice.fill('input[name=text]', 'hello from alice')
    await alice.click('#send button[type=submit]')
    const line = bob.locator('#messages li.them', { hasText: 'hello from alice' })
    await line.waitFor({ timeout: 5000 })
    t.equal(await line.locator('.user').textContent(), 'alice')
    await alice.locator('#messages li.me', { hasText: 'hello from alice' }).waitFor({ timeout: 5000 })
    t.equal(await alice.inputValue('input[name=text]'), '', 'the input clears after the reply')

    // markup in a message is shown as text, never parsed
    await bob.fill('input[name=text]', '<b id="x">bold?</b>')
    await bob.click('#send button[type=submit]')
    await alice.locator('#messages li', { hasText: '<b id="x">bold?</b>' }).waitFor({ timeout: 5000 })
    t.equal(await alice.locator('#messages b#x').count(), 0)

    // empty text: validation_error with its field, shown plainly
    await alice.fill('input[name=text]', '')
    await alice.click('#send button[type=submit]')
    await alice.locator('#error', { hasText: 'validation_error' }).waitFor({ timeout: 5000 })
    t.match(await alice.textContent('#error'), /text:/)

    // the limit is 3 per 30 s here; alice has sent 1 (the invalid one is throttled first, counts too)
    let error = ''
    for (let i = 0; i < 4 && !error.includes('throttled'); i++) {
      await alice.fill('input[name=text]', `spam ${i}`)
      await alice.click('#send button[type=submit]')
      await alice.waitForFunction(() => document.getElementById('error')?.textContent !== '' || (document.querySelector('input[name=text]') as HTMLInputElement).value === '', null, { timeout: 5000 })
      error = (await alice.textContent('#error')) ?? ''
    }
    t.match(error, /Try again in \d+ s\. \(throttled\)/)

    await alice.screenshot({ path: new URL('demo-alice.png', artifacts).pathname })
    await bob.screenshot({ path: new URL('demo-bob.png', artifacts).pathname })
  })

  t.test('demo page: recent messages on join and reload; a tab whose socket dropped shows what it missed', async (t) => {
    const { base } = await startDemo(t, 10)
    const browser = await launch(t)
    const context = await browser.newContext({ viewport: { width: 900, height: 700 } })
    const alice = await context.newPage()
    const bob = await context.newPage()
    watchErrors(t, alice, 'alice')
    watchErrors(t, bob, 'bob')

    // alice's WebSocket goes through the test, which can drop it and keep it down
    let blocked = false
    const open: Array<{ close: () => Promise<void> }> = []
    await alice.routeWebSocket(/\/ws\/chat\//, (ws) => {
      if (blocked) {
        ws.close({ code: 1013, reason: 'test: still down' }).catch(() => {})
        return
      }
      const server = ws.connectToServer()
      open.push({ close: async () => { await ws.close({ code: 1012, reason: 'test: dropped' }); await server.close() } })
    })

    const say = async (page: Page, text: string) => {
      await page.fill('input[name=text]', text)
      await page.click('#send button[type=submit]')
      await page.locator('#messages li.me', { hasText: text }).waitFor({ timeout: 5000 })
    }
    await joinChat(bob, base, 'bob', 'history')
    await say(bob, 'said before alice came')
    await joinChat(alice, base, 'alice', 'history')
    await alice.locator('#messages li.them', { hasText: 'said before alice came' }).waitFor({ timeout: 5000 })
    t.pass('a fresh page shows the room\'s recent messages')
    await say(bob, 'alice is here')
    await alice.locator('#messages li.them', { hasText: 'alice is here' }).waitFor({ timeout: 5000 })

    // drop alice's socket and keep her away while bob talks
    blocked = true
    await Promise.all(open.splice(0).map((s) => s.close()))
    await alice.locator('#status', { hasText: 'reconnecting' }).waitFor({ timeout: 5000 })
    await say(bob, 'missed one')
    await say(bob, 'missed two')
    t.equal(await alice.locator('#messages li', { hasText: 'missed' }).count(), 0, 'alice is away')
    blocked = false
    await alice.locator('#messages li.system', { hasText: '2 missed messages recovered' }).waitFor({ timeout: 15_000 })
    const texts = await alice.locator('#messages li.them').allTextContents()
    t.strictSame(texts.filter((line) => line.includes('missed')), ['bobmissed one', 'bobmissed two'], 'what she missed, once each, in order')
    await say(bob, 'live again')
    await alice.locator('#messages li.them', { hasText: 'live again' }).waitFor({ timeout: 5000 })
    await alice.screenshot({ path: new URL('demo-recovered.png', artifacts).pathname })

    // a reload shows the room's recent messages again
    await alice.reload()
    await joinChat(alice, base, 'alice', 'history')
    await alice.locator('#messages li.them', { hasText: 'live again' }).waitFor({ timeout: 5000 })
    t.strictSame((await alice.locator('#messages li.them').allTextContents()).filter((line) => line.startsWith('bob')),
      ['bobsaid before alice came', 'bobalice is here', 'bobmissed one', 'bobmissed two', 'boblive again'])
  })

  t.test('playground: lists the routes, connects with a token, sends chat.whoami and shows the reply', async (t) => {
    const { app, base } = await startDemo(t)
    const token = app.jwt.sign({ sub: 'carol', role: 'user' })
    const browser = await launch(t)
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } })
    watchErrors(t, page, 'playground')
    await page.goto(base + '/wsx/playground')
    await page.waitForSelector('#route-count:has-text("route(s)")', { timeout: 5000 })
    const panel = page.locator('[data-panel="1"]')
    const routeOptions = await panel.locator('select[aria-label=route] option').allTextContents()
    t.same(routeOptions, ['/ws/chat/:room', '/ws/bench'])

    await panel.locator('input[data-param=room]').fill('general')
    await panel.locator('input[aria-label=token]').fill(token)
    await panel.getByRole('button', { name: 'Connect', exact: true }).click()
    await panel.locator('.status', { hasText: 'authenticated' }).waitFor({ timeout: 5000 })
    t.equal(await panel.locator('ol.log', { hasText: token }).count(), 0, 'the token is never shown in the log')

    await panel.locator('select[aria-label=action]').selectOption({ label: 'chat.whoami' })
    await panel.getByRole('button', { name: 'Send', exact: true }).click()
    await panel.locator('ol.log li.in', { hasText: '"ok":true' }).filter({ hasText: 'carol' }).waitFor({ timeout: 5000 })

    // the editor is prefilled from the request schema
    await panel.locator('select[aria-label=action]').selectOption({ label: 'chat.send' })
    t.same(JSON.parse(await panel.locator('textarea').inputValue()), { text: '' })
    await panel.locator('textarea').fill('{"text": "from the playground"}')
    await panel.getByRole('button', { name: 'Send', exact: true }).click()
    await panel.locator('ol.log li', { hasText: '"action":"chat.message"' }).waitFor({ timeout: 5000 })

    // a second connection, no token: only public actions; then its close code shows
    await page.click('#new-connection')
    const second = page.locator('[data-panel="2"]')
    await second.getByRole('button', { name: 'Connect', exact: true }).click()
    await second.locator('ol.log li', { hasText: 'socket.handshake' }).waitFor({ timeout: 5000 })
    await second.locator('select[aria-label=action]').selectOption({ label: 'chat.whoami' })
    await second.getByRole('button', { name: 'Send', exact: true }).click()
    await second.locator('ol.log li.err', { hasText: 'not_authenticated' }).waitFor({ timeout: 5000 })
    await second.getByRole('button', { name: 'Disconnect', exact: true }).click()
    await second.locator('ol.log li', { hasText: 'closed: code 1000' }).waitFor({ timeout: 5000 })

    await page.screenshot({ path: new URL('playground.png', artifacts).pathname, fullPage: true })
  })
}
