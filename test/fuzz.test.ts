// Property tests (fast-check), bounded in runs and time: the envelope parser on hostile
// text, and whole connections fed random frames over a real socket.
import { test } from 'tap'
import fc from 'fast-check'
import { decodeFrame } from '../lib/codec.js'
import { parseEnvelope } from '../lib/envelope.js'
import { WsxError } from '../lib/errors.js'
import { CloseCode, ErrorCode } from '../lib/protocol.js'
import { build, tokenFor, verifyJwt } from './helpers/build.js'
import { connect, type Frame, type TestClient } from '../lib/testing.js'
import { action, Type } from '../index.js'

const MAX_DEPTH = 32
const ERROR_CODES = new Set<string>(Object.values(ErrorCode))
const CLOSE_CODES = new Set<number>(Object.values(CloseCode))
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype']

const deep = fc.integer({ min: 1, max: 200 }).map((n) => '['.repeat(n) + ']'.repeat(n))
const deepObject = fc.integer({ min: 1, max: 200 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n))
const protoFrame = fc.tuple(fc.constantFrom(...PROTO_KEYS), fc.jsonValue()).map(([k, v]) => `{"action":"chat.echo","data":{"${k}":${JSON.stringify(v)}},"${k}":{"x":1}}`)
const envelopeLike = fc.record({
  id: fc.oneof(fc.string(), fc.integer(), fc.double(), fc.constant(null), fc.jsonValue()),
  action: fc.oneof(fc.constantFrom('chat.echo', 'socket.ping', 'nope.x', '', 'a..b', 'x'.repeat(200)), fc.string()),
  data: fc.oneof(fc.jsonValue(), fc.object(), fc.constant(null)),
  trace_id: fc.oneof(fc.string(), fc.integer(), fc.constant(undefined))
}, { requiredKeys: [] }).map((o) => JSON.stringify(o))
const hostileText = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  envelopeLike,
  deep,
  deepObject,
  protoFrame,
  fc.integer({ min: 10_000, max: 200_000 }).map((n) => `{"action":"chat.echo","data":{"text":"${'x'.repeat(n)}"}}`)
)

/** What the server's front half does: decode errors become parse_error (handle-message.ts). */
function parseText (text: string) {
  try {
    return parseEnvelope(decodeFrame(text, MAX_DEPTH))
  } catch (err) {
    if (err instanceof SyntaxError) throw new WsxError(ErrorCode.parse, 'The frame is not valid JSON.')
    throw err
  }
}

test('parseEnvelope(decodeFrame(text)): a valid envelope or parse_error, nothing else', async (t) => {
  fc.assert(fc.property(hostileText, (text) => {
    let env
    try {
      env = parseText(text)
    } catch (err) {
      return err instanceof WsxError && err.code === ErrorCode.parse
    }
    return typeof env.action === 'string' && /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(env.action) && env.action.length <= 128 &&
      (env.id === null || typeof env.id === 'string' || Number.isSafeInteger(env.id)) &&
      typeof env.data === 'object' && env.data !== null && !Array.isArray(env.data) &&
      typeof env.trace_id === 'string' && env.trace_id.length > 0 && env.trace_id.length <= 128 &&
      !Object.hasOwn(env.data, '__proto__') && Object.getPrototypeOf(env.data) === Object.prototype
  }), { numRuns: 300, interruptAfterTimeLimit: 10_000 })
  t.pass('300 hostile texts parsed or refused with parse_error')
})

/** PROTOCOL.md's server frame shapes: a reply, an error with a known code, or an event. */
function isProtocolFrame (f: Frame): boolean {
  if (f.binary === true) return false
  const idOk = f.id === undefined || f.id === null || typeof f.id === 'string' || typeof f.id === 'number'
  if (f.ok === true) return idOk && 'data' in f && typeof f.trace_id === 'string'
  if (f.ok === false) return idOk && typeof f.error?.code === 'string' && ERROR_CODES.has(f.error.code) && typeof f.error.detail === 'string'
  return typeof f.action === 'string' && f.ok === undefined && typeof f.data === 'object'
}

type Input = { kind: 'text', text: string } | { kind: 'binary', bytes: Uint8Array }

const input: fc.Arbitrary<Input> = fc.oneof(
  { weight: 8, arbitrary: hostileText.map((text) => ({ kind: 'text' as const, text })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((bytes) => ({ kind: 'binary' as const, bytes })) }
)

test('random frames on a real connection: protocol-shaped answers, known close codes, still serving', async (t) => {
  const app = await build(t, { wsx: { maxPayload: 256 * 1024, messageRateLimit: false, connectionRateLimit: false } })
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws/fuzz',
      authenticate: [verifyJwt],
      actions: {
        'chat.echo': action({ request: Type.Object({ text: Type.String({ maxLength: 100_000 }) }), handler: async (msg) => ({ text: msg.data.text }) }),
        'math.add': action({ request: Type.Object({ a: Type.Number(), b: Type.Number() }), response: Type.Object({ sum: Type.Number() }), handler: async (msg) => ({ sum: msg.data.a + msg.data.b }) }),
        'boom.now': action({ handler: async () => { throw new Error('internal detail that must not leak') } })
      }
    })
  })
  const token = tokenFor(app, 'fuzzer')
  let client: TestClient | null = null
  let unexpected: string[] = []
  const closes: number[] = []
  let runs = 0
  const open = async (): Promise<TestClient> => {
    const c = await connect(app, '/ws/fuzz', { token })
    await c.next('socket.authorized')
    return c
  }
  const deadline = Date.now() + 20_000

  await fc.assert(fc.asyncProperty(fc.array(input, { minLength: 1, maxLength: 15 }), async (inputs) => {
    if (client === null || !client.isOpen) {
      if (client) closes.push((await client.closed()).code)
      client = await open()
    }
    const c = client
    const seen = c.frames.length
    for (const i of inputs) {
      if (!c.isOpen) break
      if (i.kind === 'text') c.sendRaw(i.text)
      else c.sendRaw(Buffer.from(i.bytes), { binary: true })
    }
    // a ping through the same socket: the ordered queue answers it after every input
    runs++
    if (c.isOpen) await Promise.race([c.request('socket.ping', undefined, { timeoutMs: 3000 }), c.closed(3000)]).catch(() => null)
    for (const f of c.frames.slice(seen)) if (!isProtocolFrame(f) || JSON.stringify(f).includes('internal detail')) unexpected.push(JSON.stringify(f).slice(0, 200))
    if (!c.isOpen) {
      const { code } = await c.closed()
      closes.push(code)
      client = null
    }
    return unexpected.length === 0
  }), { numRuns: 150, interruptAfterTimeLimit: Math.max(1000, deadline - Date.now()) })

  t.ok(runs >= 50, `${runs} sequences ran`)
  t.same(unexpected, [], 'every server frame had a PROTOCOL.md shape')
  t.same(closes.filter((code) => !CLOSE_CODES.has(code)), [], `close codes are PROTOCOL §7 ones (${[...new Set(closes)].join(', ') || 'none'})`)
  // the connection, or a fresh one, still works
  const c = client !== null && (client as TestClient).isOpen ? client as TestClient : await open()
  t.match(await c.request('socket.ping'), { ok: true, data: { pong: true } })
  t.match(await c.request('math.add', { a: 1, b: 2 }), { ok: true, data: { sum: 3 } })
  unexpected = []
  await c.close()
})
