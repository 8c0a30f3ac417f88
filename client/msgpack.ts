// fastify-wsx/client/msgpack: the MessagePack codec for the client (`wsx.v1.msgpack`).
// A separate entry point, so JSON users' bundles never carry msgpackr.
import { Packr, Unpackr } from 'msgpackr'
import { MSGPACK_OPTIONS, MSGPACK_SUBPROTOCOL } from '../protocol/index.js'
import type { ClientCodec } from './types.js'

const packr = new Packr(MSGPACK_OPTIONS.pack)
const unpackr = new Unpackr(MSGPACK_OPTIONS.unpack)

function bytesOf (data: unknown): Uint8Array | null {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  return null
}

/**
 * The MessagePack codec: `createClient(url, { codec: msgpack })`. Text frames are not
 * frames of this codec and are reported as bad frames.
 */
export const msgpack: ClientCodec = {
  subprotocol: MSGPACK_SUBPROTOCOL,
  encode: (frame) => packr.pack(frame),
  decode: (data) => {
    const bytes = bytesOf(data)
    return bytes === null ? undefined : unpackr.unpack(bytes)
  }
}
