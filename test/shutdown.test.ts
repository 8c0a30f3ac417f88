// Graceful shutdown with real sockets: 1001 for everyone, in-flight replies first,
// 503 for late upgrades, bounded time even with a client that stopped reading, and the
// demo process draining on SIGTERM.
import { test } from 'tap'
import net from 'node:net'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { build, tokenFor, verifyJwt } from './helpers/build.js'
import { tsNodeArgs } from './helpers/ts-child.js'
import { eventually } from './helpers/eventually.js'
import { connect, connectUrl, UpgradeRefusedError, type TestClient } from '../testing/index.js'
import { action, Type } from '../index.js'

const CLOSE_BUDGET_MS = 4000

async function chatApp (t: Parameters<typeof build>[0], shutdown = { graceMs: 1000, windowMs: 300 }): Promise<{ app: FastifyInstance, started: Promise<void> }> {
  const app = await build(t, { wsx: { shutdown, connectionRateLimit: false, maxConnectionsPerIp: 100_000, maxConnectionsPerUser: 100_000, maxBufferedBytes: 64 * 1024 * 1024 } })
  let markStarted!: () => void
  const started = new Promise<void>((resolve) => { markStarted = resolve })
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws/chat',
      authenticate: [verifyJwt],
      actions: {
        'chat.echo': action({ request: Type.Object({ text: Type.String() }), handler: async (msg) => ({ text: msg.data.text }) }),
        'slow.op': action({
          handler: async () => {
            markStarted()
            await new Promise((resolve) => setTimeout(resolve, 300))
            return { done: true }
          }
        }),
        // fills the socket of a client that does not read
        'flood.me': action({
          handler: async (_msg, conn) => {
            const chunk = 'x'.repeat(60_000)
            for (let i = 0; i < 400; i++) conn.send('flood.chunk' as never, { chunk } as never)
            return { sent: 400 }
          }
        })
      }
    })
  })
  await app.ready()
  return { app, started }
}

async function timed (p: Promise<unknown>): Promise<number> {
  const start = Date.now()
  await p
  return Date.now() - start
}

test('app.close(): 200 clients all see 1001, in batches spread over the window', async (t) => {
  const { app } = await chatApp(t, { graceMs: 1000, windowMs: 400 })
  const token = tokenFor(app, 'alice')
  const clients: TestClient[] = []
  for (let i = 0; i < 200; i++) clients.push(await connect(app, '/ws/chat', { token }))
  await Promise.all(clients.map((c) => c.next('socket.authorized')))
  t.equal(app.wsx.stats().connections.open, 200)

  const closedAt: number[] = []
  const codes = Promise.all(clients.map((c) => c.closed(CLOSE_BUDGET_MS).then((info) => { closedAt.push(Date.now()); return info.code })))
  const ms = await timed(app.close())
  t.same(new Set(await codes), new Set([1001]), 'every client saw 1001')
  t.ok(ms < CLOSE_BUDGET_MS, `close took ${ms} ms`)
  const spread = Math.max(...closedAt) - Math.min(...closedAt)
  t.ok(spread >= 200, `closes spread over ${spread} ms, not all at once`)
  t.equal(app.wsx.stats().closes['1001'], 200, 'stats count the 1001 closes')
})

test('an in-flight handler finishes and its reply arrives before the 1001', async (t) => {
  const { app, started } = await chatApp(t)
  const c = await connect(app, '/ws/chat', { token: tokenFor(app, 'bob') })
  await c.next('socket.authorized')
  const reply = c.request('slow.op')
  await started
  const closing = app.close()

  // new upgrades are refused while draining
  const late = await connect(app, '/ws/chat', { token: tokenFor(app, 'late') }).then(() => null, (err: unknown) => err)
  t.ok(late instanceof UpgradeRefusedError, 'late upgrade refused')
  t.equal((late as UpgradeRefusedError).statusCode, 503)

  t.match(await reply, { ok: true, data: { done: true } })
  const info = await c.closed(CLOSE_BUDGET_MS)
  t.equal(info.code, 1001)
  const replyIndex = c.frames.findIndex((f) => f.ok === true && (f.data as { done?: boolean }).done)
  t.equal(replyIndex, c.frames.length - 1, 'the reply is the last frame before the close')
  await closing
})

test('a client that upgrades then never reads does not hang close()', async (t) => {
  const { app } = await chatApp(t, { graceMs: 500, windowMs: 100 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const token = tokenFor(app, 'stalled')

  const raw = net.connect(port, '127.0.0.1')
  t.teardown(() => { raw.destroy() })
  await once(raw, 'connect')
  // a masked client frame asking for a flood, sent right after the upgrade request
  const body = Buffer.from(JSON.stringify({ id: 1, action: 'flood.me' }))
  const mask = Buffer.from([1, 2, 3, 4])
  const masked = Buffer.from(body.map((b, i) => b ^ mask[i % 4]!))
  const header = Buffer.from([0x81, 0x80 | 126, body.length >> 8, body.length & 0xff])
  raw.write([
    'GET /ws/chat HTTP/1.1', `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', `Authorization: Bearer ${token}`, '', ''
  ].join('\r\n'))
  raw.write(Buffer.concat([header, mask, masked]))
  // read only the first bytes (the 101), then stop reading for good
  await once(raw, 'data')
  raw.pause()

  // wait until the server holds a big unread backlog for this socket
  const buffered = await eventually(() => [...app.websocketServer.clients][0]?.bufferedAmount ?? 0, (bytes) => bytes > 1_000_000, { what: 'a server-side backlog over 1 MB', timeout: 3000, interval: 20 })
  t.ok(buffered > 1_000_000, `server-side backlog of ${buffered} bytes`)

  const ms = await timed(app.close())
  t.ok(ms < 2500, `close took ${ms} ms (grace 500 + window 100 + handshake wait)`)
  t.equal(app.websocketServer.clients.size, 0, 'the stalled socket was terminated')
})

test('demo: SIGTERM with 300 clients, all see 1001 and the process exits 0', async (t) => {
  const port = await freePort()
  const child = spawn(process.execPath, tsNodeArgs('examples/chat/server.ts'), {
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', WSX_DEMO_CONNECT_LIMIT: '100000', WSX_DEMO_MAX_CONNECTIONS_PER_IP: '100000' },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })

  const base = `http://127.0.0.1:${port}`
  await waitForHttp(`${base}/health`, 20_000)
  const clients: TestClient[] = []
  for (let i = 0; i < 300; i++) {
    const res = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: `u${i}` }) })
    const { token } = await res.json() as { token: string }
    clients.push(await connectUrl(`ws://127.0.0.1:${port}/ws/chat/general`, { token }))
  }
  await Promise.all(clients.map((c) => c.next('socket.authorized', 5000)))

  const codes = Promise.all(clients.map((c) => c.closed(8000).then((i) => i.code)))
  const start = Date.now()
  // one node process (tsx as a loader, not the tsx CLI), so the signal reaches the server itself
  child.kill('SIGTERM')
  t.same(new Set(await codes), new Set([1001]), 'every client saw 1001')
  const [code] = await exited
  const ms = Date.now() - start
  t.equal(code, 0, `exit code 0 (stderr: ${stderr.slice(0, 500)})`)
  t.ok(ms < 8000, `exited ${ms} ms after SIGTERM`)
})

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}

async function waitForHttp (url: string, timeout: number): Promise<void> {
  await eventually(async () => (await fetch(url)).status, (status) => status >= 200 && status < 300, { what: `${url} to answer`, timeout, interval: 100 })
}
