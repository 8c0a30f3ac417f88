// A tiny request/reply protocol over Node's IPC channel, used between the bench
// orchestrator and its children (one server process per peer, one load generator).
// IPC keeps the control traffic off the sockets being measured.

/** A call from the orchestrator to a child. */
export interface RpcCall {
  rpc: number
  op: string
  args?: unknown
}

/** The child's answer to one call. */
export interface RpcAnswer {
  rpc: number
  ok: boolean
  result?: unknown
  error?: string
}

/** The first message a child sends, once it can take calls. */
export interface ReadyMessage {
  ready: Record<string, unknown>
}

/** An op handler: receives the call's args, returns what goes back. */
export type RpcHandler = (args: unknown) => unknown

function isCall (msg: unknown): msg is RpcCall {
  return typeof msg === 'object' && msg !== null &&
    typeof (msg as RpcCall).rpc === 'number' && typeof (msg as RpcCall).op === 'string'
}

function sendToParent (msg: RpcAnswer | ReadyMessage): void {
  // process.send is undefined when the file is run by hand without an IPC channel
  if (process.send === undefined) throw new Error('bench children must be started by bench/run.ts (no IPC channel)')
  process.send(msg)
}

/**
 * Serves calls from the parent with the given handlers, then announces readiness.
 * The child exits when the parent goes away (IPC disconnect), so a crashed or
 * interrupted orchestrator never leaves servers or load generators behind.
 */
export function serveRpc (handlers: Record<string, RpcHandler>, ready: Record<string, unknown>): void {
  process.on('disconnect', () => process.exit(0))
  process.on('message', (msg: unknown) => {
    if (!isCall(msg)) return
    const handler = handlers[msg.op]
    if (handler === undefined) {
      sendToParent({ rpc: msg.rpc, ok: false, error: `unknown op ${msg.op}` })
      return
    }
    Promise.resolve()
      .then(() => handler(msg.args))
      .then(
        (result) => sendToParent({ rpc: msg.rpc, ok: true, result }),
        (err: unknown) => sendToParent({ rpc: msg.rpc, ok: false, error: err instanceof Error ? err.message : String(err) })
      )
  })
  sendToParent({ ready })
}
