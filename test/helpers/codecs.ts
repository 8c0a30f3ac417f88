// The two encodings of the envelope, for tests that run once per codec: JSON text frames
// and MessagePack binary frames (`wsx.v1.msgpack`). Rows written as JSON text are sent
// as they are on JSON, and as the same value in MessagePack on the other codec.
import { Packr } from 'msgpackr'
import type { Codec } from '../../testing/index.js'

export const CODECS: readonly Codec[] = ['json', 'msgpack']

const packr = new Packr({ useRecords: false })

/** A map that announces two entries and ends after one key: not a MessagePack value. */
export const TRUNCATED_MSGPACK = Buffer.from([0x82, 0xa2, 0x69, 0x64])

/** The frame a test sends: JSON text as is, or its MessagePack form (text that is not JSON: truncated MessagePack). */
export function rawFrame (codec: Codec, text: string): string | Buffer {
  if (codec === 'json') return text
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return TRUNCATED_MSGPACK
  }
  return packr.pack(value)
}

/** Encodes a value as MessagePack the way a client would. */
export function pack (value: unknown): Buffer {
  return packr.pack(value)
}

/** The detail of a frame that does not decode in `codec`. */
export function undecodableDetail (codec: Codec): string {
  return codec === 'json' ? 'The frame is not valid JSON.' : 'The frame is not valid MessagePack.'
}
