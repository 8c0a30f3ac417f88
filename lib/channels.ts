// Channel subscriptions (PROTOCOL §6, after mizan): params validated by the channel's
// schema, then its authorize check, then the connection joins the channel's group.
// Events of a subscription carry `channel` and `params`.
import type { FastifyInstance } from 'fastify'
import type { Connection } from './connection.js'
import { okFrame, type Envelope } from './envelope.js'
import { WsxError } from './errors.js'
import { ErrorCode } from './protocol.js'
import { toFields } from './validation.js'
import { replyError } from './handle-message.js'
import type { CompiledChannel } from './route.js'

const OK = '{"subscribed":true}'
const OK_UNSUB = '{"subscribed":false}'

function resolve (conn: Connection, env: Envelope): { channel: CompiledChannel, params: Record<string, unknown> } | null {
  const name = env.data.channel
  const channel = typeof name === 'string' ? conn.route.channels.get(name) : undefined
  if (!channel) {
    replyError(conn, env, new WsxError(ErrorCode.notFound, 'Unknown channel.'))
    return null
  }
  const params = env.data.params ?? {}
  if (!channel.validate(params)) {
    replyError(conn, env, new WsxError(ErrorCode.validation, 'Invalid channel params.', { fields: prefixFields(toFields(channel.validate.errors)) }))
    return null
  }
  return { channel, params: params as Record<string, unknown> }
}

function prefixFields (fields: Record<string, string[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const [k, v] of Object.entries(fields)) out[k ? `params.${k}` : 'params'] = v
  return out
}

export async function subscribeChannel (conn: Connection, env: Envelope): Promise<void> {
  const found = resolve(conn, env)
  if (!found) return
  const { channel, params } = found
  if (channel.authorize && await channel.authorize.call(conn.route.instance as FastifyInstance, params, conn as never) !== true) {
    return replyError(conn, env, new WsxError(ErrorCode.permissionDenied))
  }
  const group = channel.group(params)
  conn.subscriptions.set(group, { channel: channel.name, params })
  await conn.join(group)
  conn.core.stats.outcome(env.action, 'ok')
  if (env.id !== null) conn.sendRaw(okFrame(env.id, OK, env.trace_id))
}

export async function unsubscribeChannel (conn: Connection, env: Envelope): Promise<void> {
  const found = resolve(conn, env)
  if (!found) return
  const group = found.channel.group(found.params)
  conn.subscriptions.delete(group)
  await conn.leave(group)
  conn.core.stats.outcome(env.action, 'ok')
  if (env.id !== null) conn.sendRaw(okFrame(env.id, OK_UNSUB, env.trace_id))
}
