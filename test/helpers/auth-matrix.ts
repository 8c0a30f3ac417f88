// Shared steps of the conformance matrix (README "Authentication": strategies from the
// registry): each row protects an HTTP route and a WebSocket route with the same function
// and checks both, at the upgrade and in-band, success and failure.
import type { Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import wsx from '../../index.js'
import { connect, UpgradeRefusedError, type TestClient } from '../../testing/index.js'

/** A bare app with fastify-wsx; room for many failures so no row trips the lock by accident. */
export async function bareApp (t: Test, register: (app: FastifyInstance) => Promise<void>): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await register(app)
  await app.register(wsx, { heartbeatMs: 0, connectionRateLimit: false, handshake: { attempts: 50 } })
  t.teardown(async () => {
    for (const c of app.websocketServer?.clients ?? []) c.terminate()
    await app.close()
  })
  return app
}

/** Opens and expects `socket.authorized via upgrade` as the very first frame. */
export async function upgradeAuthenticates (t: Test, app: FastifyInstance, path: string, headers: Record<string, string>, what: string): Promise<TestClient> {
  const c = await connect(app, path, { headers })
  t.teardown(() => c.close())
  t.strictSame(await c.next(), { action: 'socket.authorized', data: { authenticated: true, via: 'upgrade' } }, `${what}: authenticated at the upgrade`)
  return c
}

/** Opens and expects `socket.handshake` (the in-band handshake) as the first frame. */
export async function upgradeOpensHandshake (t: Test, app: FastifyInstance, path: string, headers: Record<string, string>, what: string): Promise<TestClient> {
  const c = await connect(app, path, { headers })
  t.teardown(() => c.close())
  t.match(await c.next(), { action: 'socket.handshake' }, `${what}: opens with socket.handshake`)
  return c
}

/** Expects the upgrade to be refused with `status`; resolves the refusal (its headers). */
export async function upgradeRefused (t: Test, app: FastifyInstance, path: string, headers: Record<string, string>, status: number, what: string): Promise<UpgradeRefusedError | undefined> {
  try {
    const c = await connect(app, path, { headers })
    await c.close()
    t.fail(`${what}: the upgrade was accepted`)
  } catch (err) {
    t.type(err, UpgradeRefusedError, what)
    t.equal((err as UpgradeRefusedError).statusCode, status, `${what}: HTTP ${status}`)
    return err as UpgradeRefusedError
  }
}

export async function inbandAuthenticates (t: Test, c: TestClient, data: Record<string, unknown>, what: string): Promise<void> {
  t.match(await c.request('socket.authorize', data), { action: 'socket.authorized', data: { authenticated: true, via: 'authorize' } }, `${what}: authenticated in-band`)
}

export async function inbandFails (t: Test, c: TestClient, data: Record<string, unknown>, what: string): Promise<void> {
  t.match(await c.request('socket.authorize', data), { ok: false, error: { code: 'authentication_failed' } }, `${what}: refused in-band`)
}

/** The value of cookie `name` in a response's set-cookie headers. */
export function cookieFrom (setCookie: string | string[] | undefined, name: string): string {
  for (const line of Array.isArray(setCookie) ? setCookie : [setCookie ?? '']) {
    const [pair] = line.split(';')
    const eq = pair!.indexOf('=')
    if (pair!.slice(0, eq).trim() === name) return pair!.slice(eq + 1)
  }
  throw new Error(`no ${name} cookie in ${JSON.stringify(setCookie)}`)
}
