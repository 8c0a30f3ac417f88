// Profiles the shape scenario's server by hand: starts bench/servers/wsx-shape.ts pinned to
// core 0 (optionally under `node --cpu-prof`), pumps `bench.echo` from this process (pinned
// to core 1) over 50 connections × 10 in flight, and prints server µs CPU per round-trip
// for each window. Shapes given on the command line are measured in turns.
//
//   npx tsx bench/profile-shape.ts [--prof=DIR] [--seconds=3] [--windows=3] 2x10 200x10
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { WebSocket } from 'ws'
import { repoRoot, pinSelf, hasTaskset } from './lib/children.js'

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const profDir = flag('prof')
const seconds = Number(flag('seconds') ?? 3)
const windows = Number(flag('windows') ?? 3)
const shapes = args.filter((a) => !a.startsWith('--')).map((s) => s.split('x').map(Number) as [number, number])
if (shapes.length === 0) shapes.push([2, 10], [200, 10])
const secret = randomBytes(32).toString('hex')
const CONNS = 50
const INFLIGHT = 10

interface Server { proc: ChildProcess, port: number, label: string, cpu: () => Promise<number>, conns: WebSocket[] }

function startServer (actions: number, groups: number): Promise<Server> {
  const node = ['--import', 'tsx', '--expose-gc', ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}/${actions}x${groups}`] : []), 'bench/servers/wsx-shape.ts']
  const proc = spawn(hasTaskset ? 'taskset' : process.execPath, hasTaskset ? ['-c', '0', process.execPath, ...node] : node, {
    cwd: repoRoot,
    env: { ...process.env, WSX_DEMO_SECRET: secret, BENCH_ACTIONS: String(actions), BENCH_GROUPS: String(groups) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  let seq = 0
  const pending = new Map<number, (v: unknown) => void>()
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`server exited ${code}`)))
    proc.on('message', (msg: { ready?: { port: number }, rpc?: number, result?: unknown }) => {
      if (msg.ready) {
        resolve({
          proc,
          port: msg.ready.port,
          label: `${actions} actions, ${groups} groups`,
          conns: [],
          cpu: () => new Promise((resolve) => {
            const rpc = ++seq
            pending.set(rpc, (v) => { const c = v as { userUs: number, systemUs: number }; resolve(c.userUs + c.systemUs) })
            proc.send({ rpc, op: 'cpu' })
          })
        })
      } else if (msg.rpc !== undefined) {
        pending.get(msg.rpc)?.(msg.result)
        pending.delete(msg.rpc)
      }
    })
  })
}

async function connect (s: Server): Promise<void> {
  for (let i = 0; i < CONNS; i++) {
    const res = await fetch(`http://127.0.0.1:${s.port}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: `bench${i}` }) })
    const { token } = await res.json() as { token: string }
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/ws/bench`, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false })
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject)
      ws.on('message', (raw: Buffer) => { if (raw.toString().includes('"socket.authorized"')) resolve() })
    })
    ws.removeAllListeners('message')
    s.conns.push(ws)
  }
}

const data = { p: 'x'.repeat(100) }
let replies = 0

async function pump (s: Server, ms: number): Promise<number> {
  let running = true
  const state = { outstanding: 0 }
  let id = 0
  for (const ws of s.conns) {
    const send = (): void => { state.outstanding++; ws.send(JSON.stringify({ id: id++, action: 'bench.echo', data })) }
    ws.on('message', () => { state.outstanding--; replies++; if (running) send() })
    for (let i = 0; i < INFLIGHT; i++) send()
  }
  const c0 = await s.cpu()
  const r0 = replies
  await sleep(ms)
  const c1 = await s.cpu()
  const done = replies - r0
  running = false
  while (state.outstanding > 0) await sleep(5)
  for (const ws of s.conns) ws.removeAllListeners('message')
  return (c1 - c0) / done
}

async function main (): Promise<void> {
  pinSelf(1)
  console.log(`load average ${spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.trim()}`)
  const servers: Server[] = []
  try {
    for (const [a, g] of shapes) {
      const s = await startServer(a, g)
      await connect(s)
      await pump(s, 1500) // warm-up
      servers.push(s)
    }
    const results = new Map<Server, number[]>()
    for (let w = 0; w < windows; w++) {
      for (const s of servers) {
        await pump(s, 300)
        const us = await pump(s, seconds * 1000)
        results.set(s, [...(results.get(s) ?? []), us])
      }
    }
    for (const s of servers) {
      const v = results.get(s)!.sort((x, y) => x - y)
      console.log(`${s.label}: µs CPU/round-trip ${v.map((x) => x.toFixed(2)).join(' ')}  median ${v[Math.floor(v.length / 2)]!.toFixed(2)}`)
    }
  } finally {
    for (const s of servers) {
      for (const ws of s.conns) ws.terminate()
      const exited = new Promise((resolve) => s.proc.once('exit', resolve))
      s.proc.disconnect() // the server exits 0 on disconnect, which writes its profile
      await Promise.race([exited, sleep(5000)])
      if (s.proc.exitCode === null) s.proc.kill('SIGKILL')
    }
  }
}

main().catch((err: unknown) => { console.error(err); process.exit(1) })
