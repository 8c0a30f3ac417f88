// Shapes shared by the orchestrator, the server children and the load generator.

/** The peers compared side by side. */
export type PeerName = 'ws' | 'fastify' | 'fastifyJwt' | 'socketio' | 'wsx'

/** How the load generator talks to a peer. */
export type ClientKind =
  | 'ws' // plain WebSocket, JSON envelope, ready on open
  | 'wsx' // WebSocket with a Bearer JWT at the upgrade, ready on the `socket.authorized` frame
  | 'sio' // socket.io-client, websocket transport only, emit with ack
  | 'ws-jwt' // plain WebSocket with a Bearer JWT at the upgrade, ready on open
  | 'wsx-msgpack' // as 'wsx', offering wsx.v1.msgpack: MessagePack in binary frames

/** Where and how to connect; tokens (wsx only) are handed out round-robin per connection. */
export interface ConnectSpec {
  kind: ClientKind
  url: string
  tokens?: string[]
  /** local (source) addresses, round-robin per connection: each 127.0.0.x has its own port range */
  localAddresses?: string[]
}

/** Server CPU time since process start (process.cpuUsage), in µs. */
export interface CpuSample {
  userUs: number
  systemUs: number
}

/** Server memory after forced GC (process.memoryUsage), in bytes. */
export interface MemSample {
  heapUsed: number
  rss: number
  external: number
  arrayBuffers: number
}

/** The data of every bench request: a fixed 100-byte string and an optional sequence. */
export interface BenchData {
  p: string
  bseq?: number
}

/** The payload used by every scenario, the same for every peer. */
export const PAYLOAD = 'x'.repeat(100)

/** What one peer produced in one scenario. */
export type Outcome<T> =
  | { ok: true, value: T }
  | { ok: false, reason: string }
