// Soak: the demo in a child process, N clients connecting (half authenticated at the
// upgrade, half in-band), chatting, subscribing and unsubscribing channels, dropping
// abruptly and reconnecting, for M minutes. Every minute it prints the server's heap
// after GC and RSS; it fails when the heap after GC grew beyond the bound over the first
// minute's. Usage: tsx bench/soak.ts [--clients 1000] [--minutes 10] [--max-growth 0.5]
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'

interface MemorySample { heapUsed: number, rss: number, connections: number }
type Ask = { type: 'stats' }
type Tell = { type: 'ready', port: number } | { type: 'stats', heapUsed: number, rss: number, connections: number }

const SELF = fileURLToPath(import.meta.url)
const ROOMS = ['general', 'random', 'ops', 'soak-1', 'soak-2']

// ---- server side: the demo, answering memory questions over IPC ----------------------
async function runServer (): Promise<void> {
  const { buildDemo } = await import('../examples/chat/app.js')
  const app = await buildDemo({}, { logger: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  process.on('message', (msg: Ask) => {
    if (msg.type !== 'stats') return
    // heap after a full GC is what leaks show in; a live heap is mostly garbage
    const gc = (globalThis as { gc?: () => void }).gc
    gc?.()
    const mem = process.memoryUsage()
    process.send!({ type: 'stats', heapUsed: mem.heapUsed, rss: mem.rss, connections: app.wsx.connections.size } satisfies Tell)
  })
  process.once('disconnect', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  process.send!({ type: 'ready', port } satisfies Tell)
}

// ---- client side -------------------------------------------------------------------
interface Counters { connects: number, sent: number, replies: number, events: number, errors: number, drops: number, unexpectedCloses: number, errorCodes: Record<string, number> }

class SoakClient {
  private ws: WebSocket | null = null
  private timer: NodeJS.Timeout | null = null
  private seq = 0
  private readonly subscribed = new Set<string>()
  private stopped = false

  constructor (private readonly n: number, private readonly base: string, private readonly token: string, private readonly counters: Counters) {}

  start (): void {
    if (this.stopped) return
    const room = ROOMS[this.n % ROOMS.length]!
    const atUpgrade = this.n % 2 === 0
    const ws = new WebSocket(`${this.base}/ws/chat/${room}`, atUpgrade ? { headers: { authorization: `Bearer ${this.token}` } } : {})
    this.ws = ws
    this.subscribed.clear()
    ws.on('error', () => {})
    ws.on('message', (data) => this.onFrame(data.toString()))
    ws.on('close', (code) => {
      if (this.timer) clearInterval(this.timer)
      this.timer = null
      // 1006 is our own terminate(); 1001 only at the end
      if (!this.stopped && code !== 1006 && code !== 1000) this.counters.unexpectedCloses++
      if (!this.stopped) setTimeout(() => this.start(), 200 + Math.random() * 800).unref()
    })
  }

  private onFrame (text: string): void {
    const f = JSON.parse(text) as { action?: string, ok?: boolean, error?: { code: string } }
    if (f.action === 'socket.handshake') {
      this.send('socket.authorize', { token: this.token })
      return
    }
    if (f.action === 'socket.authorized') {
      this.counters.connects++
      // each client acts every 1-3 s
      this.timer = setInterval(() => this.act(), 1000 + Math.random() * 2000)
      return
    }
    if (f.ok === true) this.counters.replies++
    else if (f.ok === false) {
      this.counters.errors++
      this.counters.errorCodes[f.error!.code] = (this.counters.errorCodes[f.error!.code] ?? 0) + 1
    } else this.counters.events++
  }

  private send (action: string, data: unknown): void {
    if (this.ws?.readyState !== WebSocket.OPEN) return
    this.ws.send(JSON.stringify({ id: ++this.seq, action, data }))
    this.counters.sent++
  }

  private act (): void {
    const r = Math.random()
    if (r < 0.6) this.send('chat.send', { text: `hello ${this.seq}` })
    else if (r < 0.9) {
      const room = ROOMS[Math.floor(Math.random() * ROOMS.length)]!
      const verb = this.subscribed.has(room) ? 'channel.unsubscribe' : 'channel.subscribe'
      if (verb === 'channel.subscribe') this.subscribed.add(room)
      else this.subscribed.delete(room)
      this.send(verb, { channel: 'room', params: { room } })
    } else if (r < 0.97) this.send('socket.ping', {})
    else {
      // abrupt: no close frame, the server learns from TCP
      this.counters.drops++
      this.ws?.terminate()
    }
  }

  stop (): void {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.ws?.terminate()
  }
}

function askStats (child: ChildProcess): Promise<MemorySample> {
  child.send({ type: 'stats' } satisfies Ask)
  return new Promise((resolve) => {
    const onMessage = (msg: Tell) => {
      if (msg.type !== 'stats') return
      child.off('message', onMessage)
      resolve({ heapUsed: msg.heapUsed, rss: msg.rss, connections: msg.connections })
    }
    child.on('message', onMessage)
  })
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`

async function runSoak (): Promise<number> {
  const { values } = parseArgs({ options: { clients: { type: 'string', default: '1000' }, minutes: { type: 'string', default: '10' }, 'max-growth': { type: 'string', default: '0.5' } } })
  const clients = Number(values.clients)
  const minutes = Number(values.minutes)
  const maxGrowth = Number(values['max-growth'])

  const child = fork(SELF, ['--server'], {
    execArgv: ['--expose-gc', '--import', 'tsx'],
    env: { ...process.env, WSX_DEMO_CONNECT_LIMIT: '100000', WSX_DEMO_MAX_CONNECTIONS_PER_IP: '100000', WSX_DEMO_SEND_LIMIT: '1000000', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const [ready] = await once(child, 'message') as [Tell]
  if (ready.type !== 'ready') throw new Error('server did not start')
  const http = `http://127.0.0.1:${ready.port}`
  console.log(`soak: ${clients} clients for ${minutes} min against the demo (pid ${child.pid}, port ${ready.port})`)

  const counters: Counters = { connects: 0, sent: 0, replies: 0, events: 0, errors: 0, drops: 0, unexpectedCloses: 0, errorCodes: {} }
  const pool: SoakClient[] = []
  for (let i = 0; i < clients; i++) {
    const res = await fetch(`${http}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: `soak${i}` }) })
    const { token } = await res.json() as { token: string }
    const c = new SoakClient(i, `ws://127.0.0.1:${ready.port}`, token, counters)
    pool.push(c)
    c.start()
  }

  const samples: MemorySample[] = []
  const started = Date.now()
  for (let minute = 1; minute <= minutes; minute++) {
    await new Promise((resolve) => setTimeout(resolve, started + minute * 60_000 - Date.now()))
    const s = await askStats(child)
    samples.push(s)
    console.log(`minute ${minute}: heap after GC ${mb(s.heapUsed)}, RSS ${mb(s.rss)}, open ${s.connections}, ` +
      `connects ${counters.connects}, sent ${counters.sent}, replies ${counters.replies}, events ${counters.events}, ` +
      `errors ${counters.errors}, drops ${counters.drops}, unexpected closes ${counters.unexpectedCloses}`)
  }

  for (const c of pool) c.stop()
  child.disconnect()
  await once(child, 'exit')

  const first = samples[0]!
  const last = samples[samples.length - 1]!
  const growth = (last.heapUsed - first.heapUsed) / first.heapUsed
  console.log(`heap after GC: first minute ${mb(first.heapUsed)}, last ${mb(last.heapUsed)} (${(growth * 100).toFixed(1)} %, bound ${(maxGrowth * 100).toFixed(0)} %)`)
  if (Object.keys(counters.errorCodes).length > 0) console.log(`error replies by code: ${JSON.stringify(counters.errorCodes)}`)
  const failed = growth > maxGrowth || counters.unexpectedCloses > 0
  console.log(failed ? 'soak: FAIL' : 'soak: ok')
  return failed ? 1 : 0
}

if (process.argv.includes('--server')) await runServer()
else process.exitCode = await runSoak()
