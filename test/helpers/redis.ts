// Starts a private redis-server per test file, so a test can stop, freeze and restart
// it without touching anyone else's Redis. Falls back to REDIS_URL; with
// neither, Redis tests skip loudly, except under CI=true where they must run.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { eventually } from './eventually.js'

interface TapLike {
  teardown (fn: () => unknown): void

  skip (...args: any[]): unknown

  fail (...args: any[]): unknown
}

export interface RedisHandle {
  host: string
  port: number
  url: string
  /** false when using an external REDIS_URL: stop/freeze/restart are then unavailable */
  owned: boolean
  stop (): Promise<void>
  /** SIGSTOP: the server keeps its sockets but answers nothing */
  freeze (): void
  thaw (): void
  restart (): Promise<void>
  /** a fresh ioredis client (closed at teardown) */
  client (): Redis
}

const hasBinary = spawnSync('redis-server', ['--version']).status === 0

export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

async function waitUntilUp (port: number, timeout = 5000): Promise<void> {
  await eventually(async () => {
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    try {
      await probe.connect()
      return await probe.ping()
    } finally {
      probe.disconnect()
    }
  }, { what: `redis-server to start on port ${port}`, timeout, interval: 25 })
}

/**
 * Returns a Redis for this test, or null after marking the test skipped.
 * Under CI=true a missing Redis fails the test instead of skipping it.
 */
export async function startRedis (t: TapLike): Promise<RedisHandle | null> {
  const clients: Redis[] = []
  const client = (port: number, host: string) => () => {
    const c = new Redis({ port, host, maxRetriesPerRequest: 1 })
    c.on('error', () => {})
    clients.push(c)
    return c
  }
  const closeClients = () => { for (const c of clients) c.disconnect() }

  if (!hasBinary) {
    const url = process.env.REDIS_URL
    if (!url) {
      const msg = '!!! REDIS TESTS SKIPPED: no redis-server binary and no REDIS_URL !!!'
      if (process.env.CI === 'true') t.fail(msg + ' (CI=true requires Redis)')
      else { console.error(msg); t.skip(msg) }
      return null
    }
    const u = new URL(url)
    const port = Number(u.port || 6379)
    const host = u.hostname
    t.teardown(closeClients)
    const unsupported = async () => { throw new Error('external REDIS_URL: cannot control the server') }
    return { host, port, url, owned: false, stop: unsupported, restart: unsupported, freeze () {}, thaw () {}, client: client(port, host) }
  }

  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'wsx-redis-'))
  let proc: ChildProcess | null = null
  const start = async () => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })
    await waitUntilUp(port)
  }
  const stop = async () => {
    const p = proc
    proc = null
    if (!p || p.exitCode !== null) return
    p.kill('SIGCONT')
    const exited = new Promise((resolve) => p.once('exit', resolve))
    p.kill('SIGKILL')
    await exited
  }
  await start()
  // closing clients before the server keeps teardown quiet (tap runs teardowns FIFO)
  t.teardown(async () => {
    closeClients()
    await stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    host: '127.0.0.1',
    port,
    url: `redis://127.0.0.1:${port}`,
    owned: true,
    stop,
    freeze: () => { (proc as ChildProcess | null)?.kill('SIGSTOP') },
    thaw: () => { (proc as ChildProcess | null)?.kill('SIGCONT') },
    restart: async () => { await stop(); await start() },
    client: client(port, '127.0.0.1')
  }
}
