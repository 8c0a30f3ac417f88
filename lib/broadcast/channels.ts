// Channel subscriptions (docs/protocol.md#channelsubscribe-and-channelunsubscribe): params validated by the channel's
// schema, then its authorize check, then the connection joins the channel's group.
// Events of a subscription carry `channel` and `params`.
import type { FastifyInstance } from 'fastify'
import type { Connection } from '../connection/connection.js'
import { okFrame, type Envelope } from '../connection/envelope.js'
import { WsxError } from '../errors.js'
import { ErrorCode } from '../../protocol/index.js'
import type { HistoryConfig } from './history.js'
import { toFields } from '../boot/validation.js'
import { replyError } from '../connection/answer.js'
import type { CompiledChannel } from '../boot/route.js'
import { parseWant, positionJson, readRecovery, releaseHold, replayAndRelease, startHold } from './recovery.js'

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
  const history = conn.core.historyStore ? channel.history : null
  if (!history) {
    // recorded before the join, so an event that arrives as soon as it is joined carries the
    // channel; removed again when the join is refused (e.g. at maxGroupsPerConnection)
    const known = conn.subscriptions.has(group)
    conn.subscriptions.set(group, { channel: channel.name, params, history: null })
    try {
      await conn.join(group)
    } catch (err) {
      forgetRefused(conn, group, known)
      throw err
    }
    conn.core.stats.outcome(env.action, 'ok')
    if (env.id !== null) conn.sendRaw(okFrame(env.id, OK, env.trace_id))
    return
  }
  await subscribeWithHistory(conn, env, channel, params, group, history)
}

/** A join that was refused leaves no subscription entry behind for the socket's life. */
function forgetRefused (conn: Connection, group: string, known: boolean): void {
  if (!known && !conn.groupSet.has(group)) conn.subscriptions.delete(group)
}

/**
 * A history channel: live frames are held from the join until the reply, which carries the
 * position (`epoch`, `offset`) and, when `recover` was sent, `recovered`; the replay follows.
 */
async function subscribeWithHistory (conn: Connection, env: Envelope, channel: CompiledChannel, params: Record<string, unknown>, group: string, history: HistoryConfig): Promise<void> {
  const want = parseWant(env.data.recover, history, 'recover')
  const already = conn.groupSet.has(group)
  const known = conn.subscriptions.has(group)
  conn.subscriptions.set(group, { channel: channel.name, params, history })
  if (!already) startHold(conn, group, null)
  try {
    try {
      await conn.join(group)
    } catch (err) {
      forgetRefused(conn, group, known)
      throw err
    }
    // already subscribed: live frames went out, a replay now would reorder them
    const r = await readRecovery(conn, group, history, already ? null : want)
    if (already && want !== null) r.recovered = false
    conn.core.stats.outcome(env.action, 'ok')
    if (env.id !== null) conn.sendRaw(okFrame(env.id, JSON.stringify({ subscribed: true, ...positionJson(r) }), env.trace_id))
    if (!already) replayAndRelease(conn, group, r)
  } finally {
    if (!already) releaseHold(conn, group, 0)
  }
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
