// One client interface over the ways the load generator talks to a peer: a raw WebSocket
// with the JSON envelope, the same with a Bearer JWT at the upgrade (raw + @fastify/jwt,
// fastify-wsx), fastify-wsx in MessagePack, and socket.io emit-with-ack. Scenarios only
// see BenchConn.
import { WebSocket } from 'ws'
import { io as ioClient } from 'socket.io-client'
import { Packr, Unpackr } from 'msgpackr'
import type { BenchData, ConnectSpec } from '../lib/types.js'

/** A connected client; set the callbacks before sending. */
export interface BenchConn {
  /** sends one request; its reply arrives through onReply with the same id */
  request (id: number, action: 'bench.echo' | 'bench.broadcast', data: BenchData): void
  onReply: (id: number, ok: boolean) => void
  onTick: (data: BenchData) => void
  close (): void
  /** set when the server closed the connection: the close code (or socket.io's reason) */
  closedBy?: string
}

const noop = (): void => {}

const packr = new Packr({ useRecords: false, variableMapSize: true })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' })

/**
 * Payload bytes of every frame sent and received (WebSocket headers not included), counted
 * only while `counting` is on: the codec comparison reads them per round-trip.
 */
export const wire = { counting: false, sent: 0, received: 0 }

/** Routes a decoded server frame to the callbacks. */
function routeMessage (conn: BenchConn, msg: { id?: unknown, ok?: unknown, action?: unknown, data?: unknown }, ws: WebSocket): void {
  if (typeof msg.id === 'number' && msg.ok !== undefined) {
    conn.onReply(msg.id, msg.ok === true)
  } else if (msg.action === 'bench.tick') {
    conn.onTick(msg.data as BenchData)
  } else if (msg.id === null && msg.ok === false) {
    conn.onReply(-1, false)
  } else if (msg.action === 'group.joined') {
    // a group with history: answer as the typed client does, so its live events flow at once
    // (a string id keeps the reply out of the request counts)
    ws.send(JSON.stringify({ id: 'join', action: 'group.recover', data: msg.data }))
  }
  // anything else (socket.authorized, pings...) is not part of the measurement
}

/** Parses a server frame of the JSON envelope and routes it to the callbacks. */
function routeFrame (conn: BenchConn, raw: string, ws: WebSocket): void {
  routeMessage(conn, JSON.parse(raw) as { id?: unknown, ok?: unknown, action?: unknown, data?: unknown }, ws)
}

function connectWs (spec: ConnectSpec, token: string | undefined, timeoutMs: number, localAddress: string | undefined): Promise<BenchConn> {
  const headers = token === undefined ? undefined : { authorization: `Bearer ${token}` }
  const packed = spec.kind === 'wsx-msgpack'
  const ws = new WebSocket(spec.url, packed ? ['wsx.v1.msgpack'] : [], { headers, perMessageDeflate: false, ...(localAddress !== undefined && { localAddress }) })
  const waitForAuthorized = spec.kind === 'wsx' || packed
  const conn: BenchConn = {
    request (id, action, data) {
      const frame = packed ? packr.pack({ id, action, data }) : JSON.stringify({ id, action, data })
      if (wire.counting) wire.sent += typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length
      ws.send(frame)
    },
    onReply: noop,
    onTick: noop,
    close () { ws.terminate() }
  }
  return new Promise((resolve, reject) => {
    let settled = false
    const fail = (err: Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      ws.terminate()
      reject(err)
    }
    const succeed = (): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(conn)
    }
    const timer = setTimeout(() => fail(new Error(`connect timeout after ${timeoutMs} ms`)), timeoutMs)
    ws.on('error', (err) => fail(err))
    ws.on('unexpected-response', (_req, res) => fail(new Error(`upgrade answered HTTP ${res.statusCode ?? '?'}`)))
    ws.on('close', (code, reason) => {
      if (settled) conn.closedBy = `${code}${reason.length > 0 ? ` ${reason.toString()}` : ''}`
      fail(new Error(`closed during connect (${code})`))
    })
    // fastify-wsx is usable once it says so: the first frame is socket.authorized
    if (!waitForAuthorized) ws.once('open', succeed)
    ws.on('message', (raw: Buffer) => {
      if (wire.counting) wire.received += raw.length
      if (packed) {
        const msg = unpackr.unpack(raw) as { action?: unknown }
        if (!settled) {
          if (msg.action === 'socket.authorized') succeed()
          return
        }
        routeMessage(conn, msg, ws)
        return
      }
      const text = raw.toString()
      if (!settled && waitForAuthorized) {
        if (text.includes('"socket.authorized"')) succeed()
        return
      }
      routeFrame(conn, text, ws)
    })
  })
}

function connectSocketIo (spec: ConnectSpec, timeoutMs: number): Promise<BenchConn> {
  const socket = ioClient(spec.url, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout: timeoutMs
  })
  const conn: BenchConn = {
    request (id, action, data) {
      socket.emit(action, data, () => conn.onReply(id, true))
    },
    onReply: noop,
    onTick: noop,
    close () { socket.disconnect() }
  }
  socket.on('bench.tick', (data: BenchData) => conn.onTick(data))
  socket.on('disconnect', (reason) => { if (reason !== 'io client disconnect') conn.closedBy = reason })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.disconnect(); reject(new Error(`connect timeout after ${timeoutMs} ms`)) }, timeoutMs)
    socket.once('connect', () => { clearTimeout(timer); resolve(conn) })
    socket.once('connect_error', (err: Error) => { clearTimeout(timer); socket.disconnect(); reject(err) })
  })
}

/** Opens one connection; `index` picks the token round-robin (wsx). */
export function connect (spec: ConnectSpec, index: number, timeoutMs = 15_000): Promise<BenchConn> {
  if (spec.kind === 'sio') return connectSocketIo(spec, timeoutMs)
  const tokens = spec.tokens ?? []
  const token = tokens.length > 0 ? tokens[index % tokens.length] : undefined
  if (spec.kind !== 'ws' && token === undefined) return Promise.reject(new Error(`${spec.kind} peer needs a token`))
  const addresses = spec.localAddresses ?? []
  return connectWs(spec, token, timeoutMs, addresses.length > 0 ? addresses[index % addresses.length] : undefined)
}

/** Opens `count` connections, at most `concurrency` handshakes at a time; all or none. */
export async function connectMany (spec: ConnectSpec, count: number, concurrency: number, offset = 0): Promise<BenchConn[]> {
  const conns: BenchConn[] = []
  let next = 0
  let failure: unknown
  const worker = async (): Promise<void> => {
    while (next < count && failure === undefined) {
      const i = next++
      try {
        conns.push(await connect(spec, offset + i))
      } catch (err) {
        failure ??= err
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  if (failure !== undefined) {
    for (const c of conns) c.close()
    throw failure
  }
  return conns
}
