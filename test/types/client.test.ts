// Compile-time checks of the typed client (`npx tsc -p tsconfig.json` is the real test: every
// `@ts-expect-error` below fails the build when its line stops being an error). The checks
// live in a function that is never called, so no socket is opened; tap only sees one pass.
import t from 'tap'
import { WebSocket } from 'ws'
import { createClient, WsxClientError, type ActionName, type EventName, type ReplyData, type RequestData } from '../../client/index.js'
import type { chatRoute, plainRoute } from '../fixtures/client-route.js'
import { action as serverAction, defineRoute as serverDefineRoute, Type } from '../../index.js'

type Chat = typeof chatRoute

/** A type-level equality, strict enough to tell `any` from a real type. */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assertType<T extends true> (_ok?: T): void {}
/** Marks values as used (the checks are their types). */
function use (..._values: unknown[]): void {}

assertType<Equals<ActionName<Chat>, 'chat.send' | 'chat.whoami' | 'public.ping' | 'math.add'>>()
assertType<Equals<RequestData<Chat, 'chat.send'>, { text: string }>>()
assertType<Equals<ReplyData<Chat, 'chat.send'>, { user: string, text: string }>>()
// without a response schema, the reply is what the handler returns
assertType<Equals<ReplyData<Chat, 'math.add'>, number>>()
assertType<Equals<EventName<Chat>, 'chat.message' | 'room.notice' | 'room.typing'>>()
assertType<Equals<ActionName<typeof plainRoute>, 'item.get' | 'item.count'>>()
assertType<Equals<ReplyData<typeof plainRoute, 'item.get'>, { id: number, name: string }>>()

// the server's own helpers: a route defined with them types the client the same way
const serverRoute = serverDefineRoute({
  url: '/ws/notes',
  actions: {
    'note.add': serverAction({
      request: Type.Object({ body: Type.String() }),
      response: Type.Object({ id: Type.Integer(), body: Type.String() }),
      handler: async (msg) => ({ id: 1, body: msg.data.body })
    })
  },
  events: { 'note.added': Type.Object({ id: Type.Integer() }) },
  channels: { notes: { params: Type.Object({ board: Type.String() }) } }
})
type Notes = typeof serverRoute
assertType<Equals<ActionName<Notes>, 'note.add'>>()
assertType<Equals<RequestData<Notes, 'note.add'>, { body: string }>>()
assertType<Equals<ReplyData<Notes, 'note.add'>, { id: number, body: string }>>()
assertType<Equals<EventName<Notes>, 'note.added'>>()

async function serverHelpersUsage (): Promise<void> {
  const c = createClient<Notes>('ws://127.0.0.1/ws/notes', { WebSocket })
  const note: { id: number, body: string } = await c.request('note.add', { body: 'x' })
  // @ts-expect-error wrong data shape
  await c.request('note.add', { text: 'x' })
  // @ts-expect-error unknown action
  await c.request('note.remove', { body: 'x' })
  // @ts-expect-error wrong channel params
  await c.subscribe('notes', { room: 'x' })
  await c.subscribe('notes', { board: 'x' }, (event) => { const board: string = event.params.board; use(board) })
  use(note)
}

async function typedUsage (): Promise<void> {
  const c = createClient<Chat>('ws://127.0.0.1/ws/chat/general', { WebSocket, token: async () => 'jwt' })

  // replies are typed, not any
  const sent: { user: string, text: string } = await c.request('chat.send', { text: 'hi' })
  // @ts-expect-error the reply is an object, not a number
  const wrongReply: number = await c.request('chat.send', { text: 'hi' })
  const sum: number = await c.request('math.add', { a: 1, b: 2 })
  // @ts-expect-error the reply is a number
  const sumAsString: string = await c.request('math.add', { a: 1, b: 2 })

  // a plain-literal route keeps the handler's return type
  const p = createClient<typeof plainRoute>('ws://127.0.0.1/ws/plain', { WebSocket })
  const item: { id: number, name: string } = await p.request('item.get', { id: 1 })
  const count: number = await p.request('item.count')
  // @ts-expect-error item.get replies an object
  const itemAsNumber: number = await p.request('item.get', { id: 1 })
  // @ts-expect-error id is an integer
  await p.request('item.get', { id: '1' })

  // actions without a request schema take no data (or an empty object)
  const me = await c.request('chat.whoami')
  const role: string = me.role
  await c.request('public.ping', {}, { timeoutMs: 100, traceId: 'abc' })
  // @ts-expect-error no such field on the whoami reply
  me.nope.toString()

  // @ts-expect-error unknown action name
  await c.request('chat.sned', { text: 'hi' })
  // @ts-expect-error wrong data shape: text must be a string
  await c.request('chat.send', { text: 42 })
  // @ts-expect-error wrong data shape: missing text
  await c.request('chat.send', { body: 'hi' })
  // @ts-expect-error data is required when the action has a request schema
  await c.request('chat.send')
  // @ts-expect-error an action without request schema takes no fields
  await c.request('chat.whoami', { user: 'x' })

  // events
  c.on('chat.message', (data, meta) => {
    const text: string = data.text
    const room: string = data.room
    // @ts-expect-error events are typed: no such field
    data.nope.toString()
    use(text, room, meta.channel)
  })
  c.on('room.typing', (data) => { const who: string = data.user; use(who) })
  // @ts-expect-error unknown event name
  c.on('chat.mesage', () => {})
  // @ts-expect-error wrong listener data type
  c.on('room.notice', (data: { count: number }) => { use(data) })

  // lifecycle events
  c.on('close', ({ code, reason, willReconnect }) => { const n: number = code; use(n, reason, willReconnect) })
  c.on('resync', ({ groups }) => { const g: string[] = groups; use(g) })
  c.on('reconnecting', ({ attempt, delayMs }) => { use(attempt + delayMs) })
  c.on('error', (err) => { const e: WsxClientError = err; use(e.code) })
  c.on('recovery', (info) => {
    assertType<Equals<typeof info.recovered, boolean>>()
    const where: string | undefined = info.group ?? info.channel
    // @ts-expect-error offset is optional (absent when the history could not be read)
    const offset: number = info.offset
    use(where, offset)
  })
  c.on('chat.message', (_data, meta) => { const offset: number | undefined = meta.offset; const group: string | undefined = meta.group; use(offset, group) })
  const position = c.position({ group: 'room:general' })
  if (position) { const p: { offset: number, epoch: string } = position; use(p) }
  // @ts-expect-error a position is asked by group, or by channel and params
  c.position({ room: 'general' })

  // channels
  const sub = await c.subscribe('room', { room: 'general' }, (event) => {
    if (event.action === 'chat.message') {
      const text: string = event.data.text
      use(text)
    } else {
      const who: string = event.data.user
      use(who)
    }
    const room: string = event.params.room
    use(room)
  })
  await sub.unsubscribe()
  // @ts-expect-error wrong channel params
  await c.subscribe('room', { rooom: 'general' })
  // @ts-expect-error params are typed: room is a string
  await c.subscribe('room', { room: 1 })
  // @ts-expect-error unknown channel
  await c.subscribe('lobby', { room: 'general' })

  // the untyped client accepts anything
  const loose = createClient('ws://127.0.0.1/ws', { WebSocket })
  await loose.request('any.thing', { x: 1 })

  use(sent, wrongReply, sum, sumAsString, role, item, count, itemAsNumber)
}

t.test('client types compile (checked by tsc)', async (t) => {
  t.type(typedUsage, 'function')
  t.type(serverHelpersUsage, 'function')
  t.equal(serverRoute.url, '/ws/notes')
  t.type(WsxClientError, 'function')
})
