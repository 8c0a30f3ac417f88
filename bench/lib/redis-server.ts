// A private redis-server for the cross-instance scenario: a free port on 127.0.0.1,
// no persistence, killed by pid when the scenario ends (or when the bench exits).
import { spawn, spawnSync } from 'node:child_process'
import { createConnection, createServer } from 'node:net'
import { track } from './children.js'

/** A running redis-server owned by the bench. */
export interface RedisServer {
  url: string
  /** seconds of CPU (user + system) the server has used so far, from `INFO cpu` */
  cpuSeconds (): Promise<number>
  stop (): Promise<void>
}

/** One inline command over a raw socket; resolves the whole reply once it stops growing. */
function command (port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ port, host: '127.0.0.1' })
    let text = ''
    sock.setTimeout(2000, () => { sock.destroy(); reject(new Error(`redis ${line}: timeout`)) })
    sock.once('error', reject)
    sock.once('connect', () => sock.write(`${line}\r\n`))
    sock.on('data', (buf) => {
      text += buf.toString()
      // a bulk reply: $<len>\r\n<body>\r\n
      const m = /^\$(\d+)\r\n/.exec(text)
      if (m !== null && text.length >= m[0].length + Number(m[1]) + 2) {
        sock.destroy()
        resolve(text.slice(m[0].length, m[0].length + Number(m[1])))
      }
    })
  })
}

async function cpuSecondsOf (port: number): Promise<number> {
  const info = await command(port, 'INFO cpu')
  const field = (name: string): number => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN)
  return field('used_cpu_user') + field('used_cpu_sys')
}

/** True when a redis-server binary is on PATH. */
export function hasRedisServer (): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

/** One PING over a raw socket; resolves true on +PONG. */
function ping (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host: '127.0.0.1' })
    const done = (ok: boolean): void => { sock.destroy(); resolve(ok) }
    sock.setTimeout(500, () => done(false))
    sock.once('error', () => done(false))
    sock.once('connect', () => sock.write('PING\r\n'))
    sock.once('data', (buf) => done(buf.toString().startsWith('+PONG')))
  })
}

/** Starts redis-server and waits (at most 5 s) until it answers PING. */
export async function startRedisServer (): Promise<RedisServer> {
  const port = await freePort()
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  track(proc)
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGKILL')
    await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 2000).unref())])
  }
  for (let i = 0; i < 100; i++) {
    if (await ping(port)) return { url: `redis://127.0.0.1:${port}`, cpuSeconds: () => cpuSecondsOf(port), stop }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  await stop()
  throw new Error(`redis-server did not answer on port ${port}`)
}
