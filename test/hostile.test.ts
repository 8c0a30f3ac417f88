// Nothing app code does can end the process: a real server in its own process
// (test/fixtures/hostile-server.ts) runs strategies, preHandler hooks, permissions,
// loadObject, handlers, channel checks and lifecycle hooks that throw Errors and
// non-Errors, reject, call `done` twice or never, and write to `reply.raw`, at the upgrade
// and in-band. Each answers its protocol error; afterwards the process is alive, still
// serving, and never saw an unhandled rejection. Failures are logged once with the trace id.
import t from 'tap'
import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { connectUrl, UpgradeRefusedError, type TestClient } from '../testing/index.js'
import { freePort } from './helpers/redis.js'
import { stopChild, tsNodeArgs } from './helpers/ts-child.js'
import { eventually } from './helpers/eventually.js'

const behaviours = ['sync-throw', 'throw-string', 'throw-null', 'throw-undefined', 'reject', 'reject-non-error', 'done-twice',
  'done-ok-then-error', 'done-never', 'raw-write', 'raw-write-then-done', 'send-twice', 'throw-after-done']

const port = await freePort()
let out = ''
const proc = spawn(process.execPath, tsNodeArgs('test/fixtures/hostile-server.ts', String(port)), { stdio: ['ignore', 'pipe', 'pipe'] })
proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
proc.stderr.on('data', (d: Buffer) => { out += d.toString() })
t.teardown(() => stopChild(proc))
await eventually(() => out, (text) => text.includes('ready') || proc.exitCode !== null, { what: 'the hostile server to start', timeout: 30_000, interval: 50 })
if (proc.exitCode !== null) throw new Error(`the hostile server exited (${proc.exitCode}):\n${out}`)
const ws = `ws://127.0.0.1:${port}`

async function open (path: string, headers: Record<string, string> = {}): Promise<TestClient> {
  const c = await connectUrl(ws + path, { headers })
  t.teardown(() => c.close())
  return c
}

async function upgradeStatus (path: string, headers: Record<string, string>): Promise<number> {
  try {
    const c = await connectUrl(ws + path, { headers })
    await c.close()
    return 101
  } catch (err) {
    return err instanceof UpgradeRefusedError ? err.statusCode : -1
  }
}

async function health (): Promise<{ alive: boolean, unhandled: number }> {
  return (await fetch(`http://127.0.0.1:${port}/health`)).json() as Promise<{ alive: boolean, unhandled: number }>
}

t.test('hostile strategies at the upgrade: a refusal over HTTP, never a crash', async (t) => {
  for (const how of behaviours) {
    const status = await upgradeStatus('/ws/cb', { authorization: `Bearer ${how}` })
    t.ok(status >= 400 && status < 500, `${how}: refused with ${status}`)
  }
  t.equal(await upgradeStatus('/ws/async', { authorization: 'Bearer throw-undefined' }), 401, 'async strategy throwing undefined: 401')
  t.equal(await upgradeStatus('/ws/auth', { authorization: 'Bearer sync-throw' }), 401, '@fastify/auth over a throwing strategy: 401')
  // without an explicit credential the upgrade falls back to the in-band handshake
  const c = await open('/ws/cb', { 'x-behave': 'sync-throw' })
  t.match(await c.next(), { action: 'socket.handshake' }, 'a crashing strategy without credentials: the handshake')
})

t.test('hostile strategies in-band: authentication_failed, never a crash', async (t) => {
  for (const path of ['/ws/cb', '/ws/auth']) {
    const c = await open(path)
    t.match(await c.next(), { action: 'socket.handshake' })
    // @fastify/auth takes a thrown null or undefined, and a second `done()`, as success (over
    // HTTP too): what it decides is its business; here only that nothing crashes
    const successByAuth = ['throw-null', 'throw-undefined', 'done-ok-then-error']
    for (const how of path === '/ws/auth' ? behaviours.filter((b) => !successByAuth.includes(b)) : behaviours) {
      t.match(await c.request('socket.authorize', { token: how }, { timeoutMs: 5000 }), { ok: false, error: { code: 'authentication_failed' } }, `${path} ${how}`)
    }
    t.match(await c.authorize('ok'), { action: 'socket.authorized' }, `${path}: a good credential still works`)
  }
})

t.test('hostile preHandler hooks, permissions, loadObject and handlers: a protocol error each', async (t) => {
  const c = await open('/ws/cb', { authorization: 'Bearer ok' })
  t.match(await c.next(), { action: 'socket.authorized' })
  for (const how of behaviours) {
    const name = how.replace(/-/g, '_')
    const pre = await c.request(`pre.${name}`, {}, { timeoutMs: 5000 })
    t.match(pre, { ok: false, error: { code: /^(server_error|permission_denied|not_authenticated)$/ } }, `preHandler ${how}: ${pre.error?.code}`)
    t.match(await c.request(`perm.${name}`), { ok: false, error: { code: 'server_error', detail: 'A server error occurred.' } }, `permission ${how}`)
    t.match(await c.request(`handler.${name}`), { ok: false, error: { code: 'server_error' } }, `handler ${how}`)
  }
  for (const name of ['load.sync_throw', 'load.throw_null', 'load.reject']) {
    t.match(await c.request(name), { ok: false, error: { code: 'server_error' } }, name)
  }
  t.match(await c.request('channel.subscribe', { channel: 'room', params: { id: '1' } }), { ok: false, error: { code: 'server_error' } }, 'a crashing channel check')
  t.match(await c.request('ok.ping'), { ok: true, data: { pong: true } }, 'the connection still serves')
})

t.test('a failure is logged once, with its trace id', async (t) => {
  const c = await open('/ws/cb', { authorization: 'Bearer ok' })
  await c.next()
  await c.request('handler.sync_throw', {}, { trace_id: 'trace-handler-1' })
  const h = await open('/ws/cb')
  await h.next()
  await h.request('socket.authorize', { token: 'sync-throw' }, { trace_id: 'trace-authorize-1' })
  const linesWith = (id: string) => out.split('\n').filter((line) => line.includes(id)).length
  // the child's stdout is a pipe: wait for the lines to arrive rather than for a fixed time
  await eventually(() => out, () => linesWith('trace-handler-1') > 0 && linesWith('trace-authorize-1') > 0, { what: 'both log lines', timeout: 5000, interval: 20 })
  // both requests were answered before we looked: nothing more is on its way for them
  for (const id of ['trace-handler-1', 'trace-authorize-1']) t.equal(linesWith(id), 1, `${id}: one log line`)
})

t.test('afterwards the process is alive, still serving, and saw no unhandled rejection', async (t) => {
  // lifecycle hooks above threw and rejected on every connect, authenticate and disconnect
  await sleep(100)
  t.equal(proc.exitCode, null, 'the process is alive')
  t.same(await health(), { alive: true, unhandled: 0 }, 'HTTP still served; unhandledRejection never fired')
  const c = await open('/ws/async', { authorization: 'Bearer ok' })
  t.match(await c.next(), { action: 'socket.authorized' })
  t.match(await c.request('ok.ping'), { ok: true }, 'WebSocket still served')
  t.notMatch(out, /UNHANDLED REJECTION/)
})
