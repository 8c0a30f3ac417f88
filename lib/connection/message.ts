// The `msg` a handler receives. The child logger is made on first use only: most
// handlers never log, and a pino child per message would cost every message.
import type { FastifyBaseLogger } from 'fastify'
import type { Envelope, MessageId } from './envelope.js'
import type { Connection } from './connection.js'

export class Message {
  readonly action: string
  readonly id: MessageId
  readonly data: Record<string, unknown>
  readonly trace_id: string
  object: unknown = undefined
  private readonly conn: Connection
  private _log?: FastifyBaseLogger

  constructor (env: Envelope, conn: Connection) {
    this.action = env.action
    this.id = env.id
    this.data = env.data
    this.trace_id = env.trace_id
    this.conn = conn
  }

  get log (): FastifyBaseLogger {
    return (this._log ??= this.conn.log.child({ trace_id: this.trace_id, action: this.action }))
  }
}
