// The demo as people start it: `npm run demo` (npm → sh → tsx → node) in its own process
// group. A terminal's Ctrl-C, or a supervisor, signals the whole group, so the server sees
// the signal several times; every client must still get 1001 and the server must exit.
// Its logs are pino-pretty lines on a terminal and JSON lines anywhere else.
import t, { type Test } from 'tap'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { connectUrl, type TestClient } from '../testing/index.js'
import { freePort } from './helpers/redis.js'
import { uncoveredEnv } from './helpers/ts-child.js'
import { waitForHealth } from './helpers/demo-process.js'

interface Started {
  proc: ChildProcess
  port: number
  output: () => string
  /** every process of the group that held its stdout/stderr has exited (npm may exit before node) */
  exited: Promise<void>
}

/** Starts `command args` in a new process group (as a shell would), killed by group at teardown. */
async function startGroup (t: Test, command: string, args: string[], env: Record<string, string> = {}): Promise<Started> {
  const port = await freePort()
  let out = ''
  const proc = spawn(command, args, {
    detached: true,
    // started as people start it (tsx), so its coverage cannot merge with the tests': not recorded
    env: { ...process.env, ...uncoveredEnv, PORT: String(port), HOST: '127.0.0.1', WSX_DEMO_CONNECT_LIMIT: '100000', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  proc.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr?.on('data', (d: Buffer) => { out += d.toString() })
  let done = false
  const exited = new Promise<void>((resolve) => proc.once('close', () => { done = true; resolve() }))
  t.teardown(async () => {
    if (!done) {
      try { process.kill(-proc.pid!, 'SIGKILL') } catch {}
      await exited
    }
  })
  await waitForHealth(`http://127.0.0.1:${port}`, proc, () => out, 60_000)
  return { proc, port, output: () => out, exited }
}

/** The path of util-linux's `script` (other `script`s take other flags), or null. */
function utilLinuxScript (): string | null {
  for (const path of ['/usr/bin/script', '/bin/script']) {
    if (!existsSync(path)) continue
    try {
      if (execFileSync(path, ['--version'], { encoding: 'utf8' }).includes('util-linux')) return path
    } catch {}
  }
  return null
}

async function isListening (port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/health`)
    return true
  } catch {
    return false
  }
}

async function clientsOf (port: number): Promise<TestClient[]> {
  const clients: TestClient[] = []
  const res = await fetch(`http://127.0.0.1:${port}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice' }) })
  const { token } = await res.json() as { token: string }
  for (let i = 0; i < 20; i++) clients.push(await connectUrl(`ws://127.0.0.1:${port}/ws/chat/general`, { token }))
  // low-level sockets are drained too
  for (let i = 0; i < 80; i++) clients.push(await connectUrl(`ws://127.0.0.1:${port}/ws/echo`))
  return clients
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`npm run demo: ${signal} to the whole process group, twice, while 100 clients are connected: every client sees 1001`, async (t) => {
    const demo = await startGroup(t, 'npm', ['run', 'demo'], { LOG_LEVEL: 'info' })
    const clients = await clientsOf(demo.port)
    const codes = Promise.all(clients.map((c) => c.closed(20_000).then((info) => info.code)))
    process.kill(-demo.proc.pid!, signal)
    // a second Ctrl-C (or a supervisor's repeat) during the drain (real time: another process)
    await sleep(150)
    process.kill(-demo.proc.pid!, signal)
    const seen = await codes
    const histogram: Record<string, number> = {}
    for (const code of seen) histogram[code] = (histogram[code] ?? 0) + 1
    t.strictSame(histogram, { 1001: 100 }, `close codes: ${JSON.stringify(histogram)}`)
    await demo.exited
    t.notOk(await isListening(demo.port), 'the server is gone')
    const log = demo.output()
    t.match(log, /already draining connections; the repeated signal is ignored/, 'the repeat was logged, not obeyed')
    t.equal(log.split('\n').filter((l) => l.includes('wsx: connections drained')).length, 1, 'one drain, logged once')
  })
}

t.test('demo logs: JSON lines when stdout is not a terminal, pino-pretty on a terminal', async (t) => {
  const piped = await startGroup(t, process.execPath, ['--import', 'tsx', 'examples/chat/server.ts'], { LOG_LEVEL: 'info' })
  const listening = piped.output().split('\n').find((l) => l.includes('Server listening'))
  t.ok(listening, 'the listening line was logged')
  t.match(JSON.parse(listening!), { level: 30, msg: /Server listening at http:\/\/127\.0\.0\.1:/ }, 'a JSON object per line')
  process.kill(-piped.proc.pid!, 'SIGTERM')
  await piped.exited

  // util-linux `script` gives the demo a pseudo-terminal as stdout, as a person's shell would
  const script = utilLinuxScript()
  if (script === null) {
    if (process.env.CI === 'true') t.fail('util-linux `script` is needed to give the demo a terminal')
    else t.comment('SKIPPED LOUDLY: util-linux `script` not found, the terminal half of this test did not run')
    return
  }
  const dir = await mkdtemp(join(tmpdir(), 'wsx-tty-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const pidFile = join(dir, 'pid')
  // the server runs in the pseudo-terminal's own session, out of reach of a group kill
  const serverPid = () => existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0
  t.teardown(() => { try { if (serverPid() > 0) process.kill(serverPid(), 'SIGKILL') } catch {} })
  const inner = `${process.execPath} --import tsx examples/chat/server.ts & echo $! > ${pidFile}; wait`
  const tty = await startGroup(t, script, ['-qfec', inner, '/dev/null'], { LOG_LEVEL: 'info' })
  const text = tty.output()
  t.match(text, /INFO.*Server listening at http:\/\/127\.0\.0\.1:/, 'a readable line')
  t.notMatch(text, /\{"level":/, 'no JSON on a terminal')
  process.kill(serverPid(), 'SIGTERM')
  await tty.exited
  t.notOk(await isListening(tty.port))
})
