// A private redis-server for the cross-instance scenarios: a free port on 127.0.0.1,
// no persistence, killed by pid when the scenario ends (or when the bench exits). Also a
// private 3-master Redis Cluster (three such servers joined by `redis-cli --cluster create`).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createConnection, createServer } from 'node:net'
import { track } from './children.js'

/** A running redis-server owned by the bench. */
export interface RedisServer {
  url: string
  /** seconds of CPU (user + system) the server has used so far, from `INFO cpu` */
  cpuSeconds (): Promise<number>
  stop (): Promise<void>
}

/** A private 3-master Redis Cluster owned by the bench. */
export interface RedisCluster {
  /** seed nodes for WSX_DEMO_REDIS_CLUSTER: `host:port,host:port,host:port` */
  nodes: string
  /** seconds of CPU (user + system) all three masters have used so far */
  cpuSeconds (): Promise<number>
  stop (): Promise<void>
}

/** One inline command over a raw socket; resolves the whole bulk reply. */
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

/** True when redis-cli is on PATH too (it creates the cluster). */
export function hasRedisCli (): boolean {
  return spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0
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

const serverArgs = (port: number): string[] => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']

/** Kills one tracked process by pid and waits (bounded) for it to exit. */
async function kill (proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  proc.kill('SIGKILL')
  await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 2000).unref())])
}

/** Waits (at most 5 s) until the server on `port` answers PING. */
async function awaitPing (port: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (await ping(port)) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

/** Starts redis-server and waits (at most 5 s) until it answers PING. */
export async function startRedisServer (): Promise<RedisServer> {
  const port = await freePort()
  const proc = spawn('redis-server', serverArgs(port), { stdio: 'ignore' })
  track(proc)
  const stop = (): Promise<void> => kill(proc)
  if (await awaitPing(port)) return { url: `redis://127.0.0.1:${port}`, cpuSeconds: () => cpuSecondsOf(port), stop }
  await stop()
  throw new Error(`redis-server did not answer on port ${port}`)
}

/**
 * Three masters, no replicas, each with its cluster bus on another free port, joined with
 * `redis-cli --cluster create`; resolves once every node reports `cluster_state:ok`.
 */
export async function startRedisCluster (): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'wsx-bench-cluster-'))
  const procs: ChildProcess[] = []
  const ports: number[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map(kill))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      const busPort = await freePort()
      const cwd = join(dir, `n${i}`)
      mkdirSync(cwd)
      const proc = spawn('redis-server', [...serverArgs(port), '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPort), '--cluster-node-timeout', '2000'], { cwd, stdio: 'ignore' })
      track(proc)
      procs.push(proc)
      ports.push(port)
    }
    for (const port of ports) if (!await awaitPing(port)) throw new Error(`cluster node on port ${port} did not answer`)
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 })
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout} ${create.stderr}`)
    for (const port of ports) {
      let ok = false
      for (let i = 0; i < 200 && !ok; i++) {
        const info = await command(port, 'CLUSTER INFO').catch(() => '')
        ok = info.includes('cluster_state:ok') && info.includes('cluster_known_nodes:3')
        if (!ok) await new Promise((resolve) => setTimeout(resolve, 100))
      }
      if (!ok) throw new Error(`cluster node on port ${port} did not reach cluster_state:ok`)
    }
  } catch (err) {
    await stop()
    throw err
  }
  return {
    nodes: ports.map((p) => `127.0.0.1:${p}`).join(','),
    cpuSeconds: async () => (await Promise.all(ports.map(cpuSecondsOf))).reduce((a, b) => a + b, 0),
    stop
  }
}
