// Property tests (fast-check), bounded in runs and time, once per codec: the decoder and
// envelope parser on hostile input (JSON text, or MessagePack bytes), and whole
// connections fed random frames over a real socket.
import { test, type Test } from 'tap'
import fc from 'fast-check'
import { decodeFrame } from '../lib/connection/json-codec.js'
import { decodeMessagePack } from '../lib/connection/msgpack-codec.js'
import { parseEnvelope } from '../lib/connection/envelope.js'
import { WsxError } from '../lib/errors.js'
import { CloseCode, ErrorCode } from '../protocol/index.js'
import { build, tokenFor, verifyJwt } from './helpers/build.js'
import { connect, type Codec, type Frame, type TestClient } from '../testing/index.js'
import { CODECS, pack, rawFrame } from './helpers/codecs.js'
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

// MessagePack that JSON could not say, or that breaks the rules: extension types (msgpackr
// would build Errors, RegExps, typed arrays from them), binary, non-string keys, NaN,
// truncated or trailing bytes, nesting far past the limit, prototype keys
const hostilePacked: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 512 }),
  hostileText.map((text) => Buffer.from(rawFrame('msgpack', text))),
  fc.integer({ min: 1, max: 100_000 }).map((n) => Buffer.concat([Buffer.alloc(n, 0x91), Buffer.from([0xc0])])),
  fc.integer({ min: 1, max: 5_000 }).map((n) => Buffer.concat([Buffer.alloc(n * 3, Buffer.from([0x81, 0xa1, 0x61])), Buffer.from([0x01])])),
  fc.constantFrom(
    [0xd4, 0x65, 0x00], [0xc7, 0x02, 0x78, 0x90, 0xa0], [0xd5, 0x74, 0x00, 0x00], [0xd6, 0xff, 0, 0, 0, 0], [0xc4, 0x01, 0x00],
    [0x81, 0x01, 0x02], [0x81, 0xc0, 0x02], [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0], [0xca, 0x7f, 0x80, 0, 0], [0xc1], [0x80, 0x00],
    [0xdd, 0xff, 0xff, 0xff, 0xff], [0xa2, 0xc3, 0x28]
  ).map((bytes) => Buffer.from(bytes)),
  fc.tuple(fc.constantFrom(...PROTO_KEYS), fc.jsonValue()).map(([k, v]) => pack(JSON.parse(`{"action":"chat.echo","data":{"${k}":${JSON.stringify(v)}},"${k}":{"x":1}}`)))
)

/** What the server's front half does: decode errors become parse_error (lib/connection/decode.ts). */
function parseInput (codec: Codec, input: string | Uint8Array) {
  try {
    return parseEnvelope(codec === 'json' ? decodeFrame(input as string, MAX_DEPTH) : decodeMessagePack(input as Uint8Array, MAX_DEPTH))
  } catch (err) {
    if (err instanceof SyntaxError || err instanceof RangeError) throw new WsxError(ErrorCode.parse, 'The frame does not decode.')
    throw err
  }
}

/** Only the JSON data model comes out of a decoder: what JSON.parse could have produced. */
function isJsonModel (value: unknown, depth = 0): boolean {
  if (depth > MAX_DEPTH) return false
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true
  if (typeof value === 'number') return Number.isFinite(value)
  if (Array.isArray(value)) return value.every((v) => isJsonModel(v, depth + 1))
  if (typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return false
  return Object.keys(value).every((k) => k !== '__proto__' && isJsonModel((value as Record<string, unknown>)[k], depth + 1))
}

for (const codec of CODECS) {
  test(`${codec}: the decoder and parseEnvelope on hostile input: a valid envelope or parse_error, nothing else`, async (t) => {
    const hostile: fc.Arbitrary<string | Uint8Array> = codec === 'json' ? hostileText : hostilePacked
    fc.assert(fc.property(hostile, (input) => {
      let env
      try {
        env = parseInput(codec, input)
      } catch (err) {
        return err instanceof WsxError && err.code === ErrorCode.parse
      }
      return typeof env.action === 'string' && /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(env.action) && env.action.length <= 128 &&
        (env.id === null || typeof env.id === 'string' || Number.isSafeInteger(env.id)) &&
        typeof env.data === 'object' && env.data !== null && !Array.isArray(env.data) &&
        typeof env.trace_id === 'string' && env.trace_id.length > 0 && env.trace_id.length <= 128 &&
        !Object.hasOwn(env.data, '__proto__') && Object.getPrototypeOf(env.data) === Object.prototype && isJsonModel(env.data)
    }), { numRuns: 300, interruptAfterTimeLimit: 10_000 })
    t.pass('300 hostile inputs parsed or refused with parse_error')
  })
}

/** The server frame shapes of docs/protocol.md#the-envelope: a reply, an error with a known code, or an event. */
function isProtocolFrame (f: Frame): boolean {
  // the test client marks a frame of the wrong type (binary on JSON, text on MessagePack)
  if (f.binary !== undefined) return false
  const idOk = f.id === undefined || f.id === null || typeof f.id === 'string' || typeof f.id === 'number'
  if (f.ok === true) return idOk && 'data' in f && typeof f.trace_id === 'string'
  if (f.ok === false) return idOk && typeof f.error?.code === 'string' && ERROR_CODES.has(f.error.code) && typeof f.error.detail === 'string'
  return typeof f.action === 'string' && f.ok === undefined && typeof f.data === 'object'
}

type Input = { kind: 'text', text: string } | { kind: 'binary', bytes: Uint8Array }

const textInput = hostileText.map((text): Input => ({ kind: 'text', text }))
const binaryInput = fc.uint8Array({ maxLength: 512 }).map((bytes): Input => ({ kind: 'binary', bytes }))
// mostly frames in the connection's own type, sometimes the other type
const inputs: Record<Codec, fc.Arbitrary<Input>> = {
  json: fc.oneof({ weight: 8, arbitrary: textInput }, { weight: 1, arbitrary: binaryInput }),
  msgpack: fc.oneof({ weight: 8, arbitrary: hostilePacked.map((bytes): Input => ({ kind: 'binary', bytes })) }, { weight: 1, arbitrary: textInput })
}

for (const codec of CODECS) {
  test(`${codec}: random frames on a real connection: protocol-shaped answers, known close codes, still serving`, (t) => fuzzConnection(t, codec))
}

async function fuzzConnection (t: Test, codec: Codec): Promise<void> {
  const input = inputs[codec]
  const app = await build(t, { wsx: { maxPayload: 256 * 1024, messageRateLimit: false, connectionRateLimit: false } })
  app.register(async (scope) => {
    scope.wsx.route({
      url: '/ws/fuzz',
      msgpack: true,
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
    const c = await connect(app, '/ws/fuzz', { token, codec })
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
  t.same(unexpected, [], 'every server frame had an envelope shape of docs/protocol.md')
  t.same(closes.filter((code) => !CLOSE_CODES.has(code)), [], `close codes are docs/protocol.md#close-codes ones (${[...new Set(closes)].join(', ') || 'none'})`)
  // the connection, or a fresh one, still works
  const c = client !== null && (client as TestClient).isOpen ? client as TestClient : await open()
  t.match(await c.request('socket.ping'), { ok: true, data: { pong: true } })
  t.match(await c.request('math.add', { a: 1, b: 2 }), { ok: true, data: { sum: 3 } })
  unexpected = []
  await c.close()
}
