// ioredis and mqemitter-redis are loaded only when the app configures `redis`: an app
// without it never loads them (checked in a fresh process, against a positive control).
import t from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startRedis } from './helpers/redis.js'
import { tsNodeArgs } from './helpers/ts-child.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const FIXTURE = fileURLToPath(new URL('./fixtures/lazy-redis.ts', import.meta.url))

function loadedModules (redisUrl?: string): Promise<{ ioredis: boolean, mqemitterRedis: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, tsNodeArgs(FIXTURE, ...(redisUrl ? [redisUrl] : [])), { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`fixture exited ${code}: ${out}`))
      resolve(JSON.parse(out.trim().split('\n').pop()!))
    })
  })
}

t.test('without redis, neither ioredis nor mqemitter-redis is loaded', async (t) => {
  t.strictSame(await loadedModules(), { ioredis: false, mqemitterRedis: false })
})

t.test('control: with redis, both are loaded (the probe can see them)', async (t) => {
  const redis = await startRedis(t)
  if (!redis) return
  t.strictSame(await loadedModules(redis.url), { ioredis: true, mqemitterRedis: true })
})
