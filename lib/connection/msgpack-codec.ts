// The optional MessagePack encoding (subprotocol `wsx.v1.msgpack`): the same envelope as
// JSON, carried in binary frames. msgpackr decodes far more than JSON can say (binary,
// extension types that build Errors, RegExps and typed arrays by name, non-string keys,
// NaN), renames `__proto__` silently, and recurses without a depth limit. So every inbound
// frame is first checked by a small iterative scanner that admits exactly the JSON data
// model, bounded in depth and free of prototype keys, and only then handed to msgpackr.
import { isUtf8 } from 'node:buffer'
import { Packr, Unpackr } from 'msgpackr'
import { MSGPACK_OPTIONS } from '../../protocol/index.js'

const packr = new Packr(MSGPACK_OPTIONS.pack)
const unpackr = new Unpackr(MSGPACK_OPTIONS.unpack)

const PROTO = Buffer.from('__proto__')
const CONSTRUCTOR = Buffer.from('constructor')
const PROTOTYPE = Buffer.from('prototype')

function refuse (why: string): never {
  throw new SyntaxError(why)
}

function sameBytes (buf: Uint8Array, start: number, length: number, word: Uint8Array): boolean {
  if (length !== word.length) return false
  for (let i = 0; i < length; i++) if (buf[start + i] !== word[i]) return false
  return true
}

/** UTF-8 check only when a byte is outside ASCII: most keys and values never pay for it. */
function checkUtf8 (buf: Uint8Array, start: number, length: number): void {
  for (let i = start, end = start + length; i < end; i++) {
    if (buf[i]! >= 0x80) {
      if (!isUtf8(buf.subarray(start, end))) refuse('invalid UTF-8 in a string')
      return
    }
  }
}

// per-level scanner state, reused between frames (sized to the deepest maxDepth seen)
let remaining = new Int32Array(33)
let levelFlags = new Uint8Array(33)
const IS_MAP = 1
const IS_CONSTRUCTOR_VALUE = 2

/**
 * Throws a SyntaxError unless `buf` holds exactly one MessagePack value of the JSON data
 * model: nil, booleans, finite numbers, UTF-8 strings, arrays, and maps with string keys,
 * nested at most `maxDepth` deep, with no `__proto__` key and no `constructor.prototype`
 * (what secure-json-parse refuses in JSON text). No recursion, so no stack to exhaust.
 */
export function checkMessagePack (buf: Uint8Array, maxDepth: number): void {
  if (remaining.length <= maxDepth) {
    remaining = new Int32Array(maxDepth + 1)
    levelFlags = new Uint8Array(maxDepth + 1)
  }
  const end = buf.length
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  let pos = 0
  let top = 0
  remaining[0] = 1
  levelFlags[0] = 0
  // the key just read was "constructor": a map as its value gets watched for "prototype"
  let constructorKey = false
  while (top >= 0) {
    if (remaining[top] === 0) {
      top--
      continue
    }
    const left = --remaining[top]!
    const isKey = (levelFlags[top]! & IS_MAP) !== 0 && left % 2 === 1
    if (pos >= end) refuse('truncated MessagePack')
    const b = buf[pos++]!
    let strLength = -1
    if (b >= 0xa0 && b <= 0xbf) strLength = b & 0x1f
    else if (b === 0xd9 || b === 0xda || b === 0xdb) {
      const size = b === 0xd9 ? 1 : b === 0xda ? 2 : 4
      if (pos + size > end) refuse('truncated MessagePack')
      strLength = size === 1 ? buf[pos]! : size === 2 ? view.getUint16(pos) : view.getUint32(pos)
      pos += size
    }
    if (strLength >= 0) {
      if (pos + strLength > end) refuse('truncated MessagePack')
      checkUtf8(buf, pos, strLength)
      if (isKey) {
        if (sameBytes(buf, pos, strLength, PROTO)) refuse('prototype key')
        if ((levelFlags[top]! & IS_CONSTRUCTOR_VALUE) !== 0 && sameBytes(buf, pos, strLength, PROTOTYPE)) refuse('prototype key')
        constructorKey = sameBytes(buf, pos, strLength, CONSTRUCTOR)
      }
      pos += strLength
      continue
    }
    if (isKey) refuse('map keys must be strings')
    const valueOfConstructor = constructorKey
    constructorKey = false

    let items = -1
    let isMap = false
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) continue
    if (b >= 0x80 && b <= 0x8f) {
      items = b & 0x0f
      isMap = true
    } else if (b >= 0x90 && b <= 0x9f) {
      items = b & 0x0f
    } else {
      switch (b) {
        case 0xcc: case 0xd0: pos += 1; break
        case 0xcd: case 0xd1: pos += 2; break
        case 0xce: case 0xd2: pos += 4; break
        case 0xcf: case 0xd3: pos += 8; break
        case 0xca:
          if (pos + 4 > end || !Number.isFinite(view.getFloat32(pos))) refuse('numbers must be finite')
          pos += 4
          break
        case 0xcb:
          if (pos + 8 > end || !Number.isFinite(view.getFloat64(pos))) refuse('numbers must be finite')
          pos += 8
          break
        case 0xdc: case 0xde:
          if (pos + 2 > end) refuse('truncated MessagePack')
          items = view.getUint16(pos)
          pos += 2
          isMap = b === 0xde
          break
        case 0xdd: case 0xdf:
          if (pos + 4 > end) refuse('truncated MessagePack')
          items = view.getUint32(pos)
          pos += 4
          isMap = b === 0xdf
          break
        default:
          // 0xc1 (never used), bin 8/16/32, ext and fixext: nothing JSON could carry
          refuse('type outside the JSON data model')
      }
      if (pos > end) refuse('truncated MessagePack')
      if (items < 0) continue
    }
    if (top + 1 > maxDepth) refuse('nesting too deep')
    // every item takes at least one byte: a count beyond the frame is a lie, refused early
    const slots = isMap ? items * 2 : items
    if (slots > end - pos) refuse('truncated MessagePack')
    top++
    remaining[top] = slots
    levelFlags[top] = isMap ? (valueOfConstructor ? IS_MAP | IS_CONSTRUCTOR_VALUE : IS_MAP) : 0
  }
  if (pos !== end) refuse('bytes after the MessagePack value')
}

/** Decodes one binary frame: checked by {@link checkMessagePack}, then read by msgpackr. */
export function decodeMessagePack (buf: Uint8Array, maxDepth: number): unknown {
  checkMessagePack(buf, maxDepth)
  return unpackr.unpack(buf)
}

/** Encodes a value (of the JSON data model) as MessagePack. */
export function encodeMessagePack (value: unknown): Buffer {
  return packr.pack(value)
}

// group and bus frames arrive as one shared Buffer, delivered to every member in turn:
// the last one's MessagePack form is kept, so a broadcast is re-encoded once, not per member
let lastFrame: Buffer | null = null
let lastEncoded: Buffer | null = null

/**
 * The MessagePack form of a frame the server built as JSON text (replies, errors, events).
 * Server frames are JSON by construction, so parsing them back is safe; a shared broadcast
 * Buffer is converted once for all its recipients.
 */
export function jsonFrameToMessagePack (frame: string | Buffer): Buffer {
  if (typeof frame === 'string') return packr.pack(JSON.parse(frame))
  if (frame === lastFrame) return lastEncoded!
  const encoded = packr.pack(JSON.parse(frame.toString('utf8')))
  lastFrame = frame
  lastEncoded = encoded
  return encoded
}
