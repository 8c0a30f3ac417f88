// fastify-wsx with the demo's /ws/bench route, grown to a given shape: BENCH_ACTIONS
// actions on the route (the two bench actions plus fillers with their own schemas) and
// BENCH_GROUPS groups in the process (one connection, user bench0, is a member of all of
// them). The `shape` scenario compares per-message CPU across shapes: routing and group
// lookups must not grow with either.
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import type { AddressInfo } from 'node:net'
import wsx, { Type, action } from '../../index.js'
import { benchRoute } from '../../examples/chat/app.js'
import { startControl, failStart } from './control.js'

function count (name: string, fallback: number): number {
  const n = Number(process.env[name] ?? fallback)
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer`)
  return n
}

/** An action with its own schema, so a big route costs what a real one would at boot. */
function filler () {
  return action({ request: Type.Object({ n: Type.Integer() }), handler: async (msg) => ({ n: msg.data.n }) })
}

async function main (): Promise<void> {
  const secret = process.env.WSX_DEMO_SECRET
  if (secret === undefined || secret === '') throw new Error('WSX_DEMO_SECRET is not set (bench/lib/peers.ts sets it)')
  const actions = count('BENCH_ACTIONS', 2)
  const groups = count('BENCH_GROUPS', 10)
  const app = Fastify({ logger: false })
  await app.register(fastifyJwt, { secret, sign: { algorithm: 'HS256', expiresIn: 3600 }, verify: { algorithms: ['HS256'], requiredClaims: ['exp'] } })
  await app.register(wsx, {
    connectionRateLimit: false,
    maxConnectionsPerIp: 1_000_000,
    maxConnectionsPerUser: 1_000_000,
    maxGroupsPerConnection: groups + 1,
    presence: false
  })
  app.post('/login', async (request) => {
    const { username } = request.body as { username: string }
    return { token: app.jwt.sign({ sub: username, role: 'user' }) }
  })
  const fillers: Record<string, ReturnType<typeof filler>> = {}
  for (let i = 0; i < actions - 2; i++) fillers[`filler.a${i}`] = filler()
  const groupNames = Array.from({ length: groups }, (_, i) => `shape:${i}`)
  app.wsx.route({
    ...benchRoute,
    actions: { ...benchRoute.actions, ...fillers },
    groups: (conn: { user: unknown }) => (conn.user as { sub?: string } | null)?.sub === 'bench0' ? ['bench', ...groupNames] : 'bench'
  } as never)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  startControl({ port, connections: () => app.wsx.connections.size })
}

main().catch((err: unknown) => failStart('wsx-shape', err))
