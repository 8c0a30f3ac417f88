// Private Redis topologies for the Cluster and Sentinel tests, started by the test and
// removed afterwards (by pid): a 3-master cluster created with `redis-cli --cluster
// create`, and a master + replica watched by one Sentinel (`redis-server --sentinel`).
// Without the binaries the tests skip loudly, except under CI=true where they fail.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort } from './redis.js'
import { eventually } from './eventually.js'

interface TapLike {
  teardown (fn: () => unknown): void
  skip (...args: any[]): unknown
  fail (...args: any[]): unknown
}

export interface NodeAddress { host: string, port: number }

const HOST = '127.0.0.1'

function hasBinaries (t: TapLike, names: string[]): boolean {
  const missing = names.filter((name) => spawnSync(name, ['--version']).status !== 0)
  if (missing.length === 0) return true
  const msg = `!!! REDIS TOPOLOGY TESTS SKIPPED: ${missing.join(', ')} not found !!!`
  if (process.env.CI === 'true') t.fail(msg + ' (CI=true requires them)')
  else { console.error(msg); t.skip(msg) }
  return false
}

/** A short-lived plain connection for admin commands; never retries. */
async function admin<T> (port: number, run: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
  c.on('error', () => {})
  try {
    await c.connect()
    return await run(c)
  } finally {
    c.disconnect()
  }
}

/** Polls a check against the topology (a refused connection counts as not yet) until it holds. */
async function until (what: string, check: () => Promise<boolean>, timeout = 20_000): Promise<void> {
  await eventually(check, { what, timeout, interval: 100 })
}

/** Starts processes in one temp dir; teardown kills them (SIGKILL, by pid) and removes it. */
function processes (t: TapLike, prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  const procs = new Set<ChildProcess>()
  const kill = async (p: ChildProcess) => {
    procs.delete(p)
    if (p.exitCode !== null || p.signalCode !== null) return
    const exited = new Promise((resolve) => p.once('exit', resolve))
    p.kill('SIGCONT')
    p.kill('SIGKILL')
    await exited
  }
  t.teardown(async () => {
    await Promise.all([...procs].map(kill))
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    dir,
    start (args: string[], cwd = dir): ChildProcess {
      const p = spawn('redis-server', args, { cwd, stdio: 'ignore' })
      procs.add(p)
      return p
    },
    kill
  }
}

function serverArgs (port: number): string[] {
  return ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no']
}

export interface RedisClusterHandle {
  nodes: NodeAddress[]
}

/**
 * Three masters (no replicas) on spare ports, each with its cluster bus on another spare
 * port (`cluster-port`), joined by `redis-cli --cluster create … --cluster-yes`.
 * Resolves once every node reports `cluster_state:ok`.
 */
export async function startRedisCluster (t: TapLike): Promise<RedisClusterHandle | null> {
  if (!hasBinaries(t, ['redis-server', 'redis-cli'])) return null
  const ps = processes(t, 'wsx-cluster-')
  const nodes: NodeAddress[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    const busPort = await freePort()
    const cwd = join(ps.dir, `n${i}`)
    spawnSync('mkdir', ['-p', cwd])
    ps.start([...serverArgs(port), '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-port', String(busPort), '--cluster-node-timeout', '2000'], cwd)
    nodes.push({ host: HOST, port })
  }
  for (const n of nodes) await until(`node ${n.port}`, () => admin(n.port, async (c) => (await c.ping()) === 'PONG'))
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 })
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout} ${create.stderr}`)
  for (const n of nodes) {
    await until(`cluster_state:ok on ${n.port}`, () => admin(n.port, async (c) => {
      const info = await c.cluster('INFO') as string
      return info.includes('cluster_state:ok') && info.includes('cluster_known_nodes:3')
    }))
  }
  return { nodes }
}

/** Runs `CLIENT KILL TYPE pubsub` on every node: every subscriber connection drops. */
export async function killSubscribers (nodes: NodeAddress[]): Promise<number> {
  let killed = 0
  for (const n of nodes) killed += Number(await admin(n.port, (c) => c.client('KILL', 'TYPE', 'pubsub')))
  return killed
}

export interface SentinelHandle {
  sentinels: NodeAddress[]
  name: string
  master: NodeAddress
  replica: NodeAddress
  /** SIGKILLs the master and resolves once Sentinel names the replica as master */
  killMasterAndFailover (): Promise<void>
}

/** One master, one replica, one Sentinel (quorum 1, down after 1 s). */
export async function startSentinel (t: TapLike): Promise<SentinelHandle | null> {
  if (!hasBinaries(t, ['redis-server'])) return null
  const ps = processes(t, 'wsx-sentinel-')
  const name = 'wsxmaster'
  const master = { host: HOST, port: await freePort() }
  const replica = { host: HOST, port: await freePort() }
  const sentinel = { host: HOST, port: await freePort() }
  const masterProc = ps.start(serverArgs(master.port))
  await until('master', () => admin(master.port, async (c) => (await c.ping()) === 'PONG'))
  ps.start([...serverArgs(replica.port), '--replicaof', HOST, String(master.port)])
  await until('replica in sync', () => admin(replica.port, async (c) => (await c.info('replication')).includes('master_link_status:up')))
  const conf = join(ps.dir, 'sentinel.conf')
  writeFileSync(conf, [
    `port ${sentinel.port}`,
    `bind ${HOST}`,
    `dir ${ps.dir}`,
    `sentinel monitor ${name} ${HOST} ${master.port} 1`,
    `sentinel down-after-milliseconds ${name} 1000`,
    `sentinel failover-timeout ${name} 5000`
  ].join('\n') + '\n')
  ps.start([conf, '--sentinel'])
  await until('sentinel sees the replica', () => admin(sentinel.port, async (c) => {
    const replicas = await c.call('SENTINEL', 'REPLICAS', name) as unknown[][]
    return replicas.some((fields) => fields.includes(String(replica.port)))
  }))
  return {
    sentinels: [sentinel],
    name,
    master,
    replica,
    async killMasterAndFailover () {
      await ps.kill(masterProc)
      await until('failover to the replica', () => admin(sentinel.port, async (c) => {
        const addr = await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as string[]
        return addr[1] === String(replica.port)
      }), 30_000)
    }
  }
}
