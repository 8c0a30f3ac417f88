// The demo's settings, from the `WSX_DEMO_*` environment variables read below; all optional.
export interface DemoSettings {
  port: number
  host: string
  secret: string
  secretIsDefault: boolean
  tokenTtl: number
  redisUrl: string | undefined
  /** seed nodes (`host:port`) of a Redis Cluster, instead of redisUrl */
  redisCluster: Array<{ host: string, port: number }> | undefined
  origins: string[]
  authAttempts: number
  authLockSeconds: number
  authTimeoutSeconds: number
  expiryGraceSeconds: number
  sendLimit: number
  sendWindowSeconds: number
  connectLimit: number
  connectWindowSeconds: number
  maxConnectionsPerIp: number
  maxConnectionsPerUser: number
  /** connections one instance accepts (the plugin's maxConnections) */
  maxConnections: number
  /** events kept by the `bench` group's history (0: no history); for `npm run bench` */
  benchHistory: number
  /** ping interval of every connection, ms (0: off); the bench shortens it to measure its cost */
  heartbeatMs: number
}

const DEV_SECRET = 'fastify-wsx-demo-dev-only-secret-change-me'

function int (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`)
  return n
}

/** `host:port,host:port` → seed nodes; undefined when unset. */
function clusterNodes (raw: string | undefined): DemoSettings['redisCluster'] {
  if (raw === undefined || raw === '') return undefined
  return raw.split(',').map((part) => {
    const m = /^\s*([^\s:]+):(\d{1,5})\s*$/.exec(part)
    if (m === null) throw new Error(`WSX_DEMO_REDIS_CLUSTER takes host:port,host:port..., got "${raw}"`)
    return { host: m[1]!, port: Number(m[2]) }
  })
}

export function readSettings (env: NodeJS.ProcessEnv = process.env): DemoSettings {
  const port = int('PORT', 3000)
  const secret = env.WSX_DEMO_SECRET
  return {
    port,
    host: env.HOST || '127.0.0.1',
    secret: secret || DEV_SECRET,
    secretIsDefault: !secret,
    tokenTtl: int('WSX_DEMO_TOKEN_TTL', 3600),
    redisUrl: env.WSX_DEMO_REDIS_URL || undefined,
    redisCluster: clusterNodes(env.WSX_DEMO_REDIS_CLUSTER),
    origins: (env.WSX_DEMO_ORIGINS || `http://localhost:${port},http://127.0.0.1:${port}`).split(',').map((o) => o.trim()).filter(Boolean),
    authAttempts: int('WSX_DEMO_AUTH_ATTEMPTS', 2),
    authLockSeconds: int('WSX_DEMO_AUTH_LOCK_SECONDS', 20),
    authTimeoutSeconds: int('WSX_DEMO_AUTH_TIMEOUT_SECONDS', 20),
    expiryGraceSeconds: int('WSX_DEMO_EXPIRY_GRACE_SECONDS', 30),
    sendLimit: int('WSX_DEMO_SEND_LIMIT', 5),
    sendWindowSeconds: int('WSX_DEMO_SEND_WINDOW_SECONDS', 10),
    connectLimit: int('WSX_DEMO_CONNECT_LIMIT', 100),
    connectWindowSeconds: int('WSX_DEMO_CONNECT_WINDOW_SECONDS', 10),
    maxConnectionsPerIp: int('WSX_DEMO_MAX_CONNECTIONS_PER_IP', 256),
    maxConnectionsPerUser: int('WSX_DEMO_MAX_CONNECTIONS_PER_USER', 32),
    maxConnections: int('WSX_DEMO_MAX_CONNECTIONS', 10_000),
    benchHistory: int('WSX_DEMO_BENCH_HISTORY', 0),
    heartbeatMs: int('WSX_DEMO_HEARTBEAT_MS', 25_000)
  }
}
