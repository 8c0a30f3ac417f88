// Builds an AsyncAPI 3.0.0 document from the route descriptions (lib/boot/describe.ts, what
// `app.wsx.describeRoutes()` returns): one AsyncAPI channel per WebSocket route, a `send`
// operation (with its reply) per action, a `receive` operation per server event. The
// document is derived, never hand-written, so it cannot drift from what the server accepts.
import { BuiltinAction, CloseCode, Detail, ErrorCode, MAX_ID_LENGTH, MAX_TRACE_ID_LENGTH, ServerEvent } from '../../protocol/index.js'
import type { ActionDescription, ChannelDescription, PlainSchema, RouteDescription } from '../../types/describe.js'

/** The `info` object of the document (AsyncAPI 3.0 Info Object). */
export interface AsyncApiInfo {
  title: string
  version: string
  description?: string
}

/** Options of `buildAsyncApi()`. */
export interface AsyncApiOptions {
  info?: Partial<AsyncApiInfo>
  /** AsyncAPI 3.0 Server Objects, keyed by name, copied as given (e.g. `{ local: { host: 'localhost:3000', protocol: 'ws' } }`) */
  servers?: Record<string, Record<string, unknown>>
}

type JsonObject = Record<string, unknown>

const SECURITY_SCHEME = 'httpBearerToken'

/** Why each close code is sent (docs/protocol.md#close-codes), keyed by the numeric code. */
const closeMeanings: Record<number, string> = {
  [CloseCode.normal]: 'normal closure',
  [CloseCode.goingAway]: 'server going away (shutdown or restart): reconnect with backoff',
  [CloseCode.unsupportedData]: 'unsupported data (binary frame on a JSON route)',
  [CloseCode.policyViolation]: 'policy violation',
  [CloseCode.messageTooBig]: 'message too big (over the route\'s max payload)',
  [CloseCode.internalError]: 'internal error: reconnect with backoff',
  [CloseCode.tryAgainLater]: 'try again later (overloaded, or the client reads too slowly): reconnect with backoff',
  [CloseCode.badFrame]: 'bad frame before authentication, or too many bad frames after it',
  [CloseCode.notAuthenticated]: 'not authenticated in time, or credential expired and not refreshed',
  [CloseCode.forbidden]: 'forbidden: credential revoked or user disconnected by the app',
  [CloseCode.lockedOut]: 'locked out: authorize attempts exhausted',
  [CloseCode.tooManyMessages]: 'too many messages after being throttled'
}

/** `/ws/chat/:room` → `/ws/chat/{room}` (AsyncAPI address expressions). */
export function toAddress (url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

/** A stable, unique document key for a route, e.g. `ws_chat_room`. */
function channelKey (url: string, taken: Set<string>): string {
  const base = url.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'root'
  let key = base
  for (let i = 2; taken.has(key); i++) key = `${base}_${i}`
  taken.add(key)
  return key
}

function idSchema (): JsonObject {
  return { oneOf: [{ type: 'string', maxLength: MAX_ID_LENGTH }, { type: 'integer' }] }
}

function traceIdSchema (): JsonObject {
  return { type: 'string', maxLength: MAX_TRACE_ID_LENGTH }
}

function requestEnvelope (action: string, data: JsonObject): JsonObject {
  return {
    type: 'object',
    required: ['action'],
    properties: { id: idSchema(), action: { type: 'string', const: action }, data, trace_id: traceIdSchema() }
  }
}

function replyEnvelope (data: JsonObject): JsonObject {
  return {
    type: 'object',
    required: ['id', 'ok', 'data'],
    properties: { id: idSchema(), ok: { type: 'boolean', const: true }, data, trace_id: traceIdSchema() }
  }
}

function eventEnvelope (action: string, data: JsonObject, channel?: { name: string, params: JsonObject }): JsonObject {
  const properties: JsonObject = { action: { type: 'string', const: action }, data, trace_id: traceIdSchema() }
  const required = ['action', 'data']
  if (channel) {
    properties.channel = { type: 'string', const: channel.name }
    properties.params = channel.params
    required.push('channel', 'params')
  }
  return { type: 'object', required, properties }
}

function errorEnvelope (): JsonObject {
  return {
    type: 'object',
    required: ['id', 'ok', 'error'],
    properties: {
      id: { oneOf: [...(idSchema().oneOf as JsonObject[]), { type: 'null' }] },
      ok: { type: 'boolean', const: false },
      error: {
        type: 'object',
        required: ['code', 'detail'],
        properties: {
          code: { type: 'string', enum: Object.values(ErrorCode) },
          detail: { type: 'string' },
          fields: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
          retry_after: { type: 'number', description: 'seconds, with throttled and locked' },
          attempts_left: { type: 'integer', description: 'with authentication_failed' }
        }
      },
      trace_id: traceIdSchema()
    }
  }
}

function message (name: string, payload: JsonObject, summary?: string): JsonObject {
  return { name, contentType: 'application/json', ...(summary && { summary }), payload }
}

/** The route's path parameters, each with its schema when `schema.params` declares one. */
function routeParameters (route: RouteDescription): JsonObject {
  const params: JsonObject = {}
  for (const { name, schema } of route.params) {
    const pattern = typeof schema?.pattern === 'string' ? ` matching ${schema.pattern}` : ''
    params[name] = {
      description: `path parameter${pattern}`,
      ...(schema && { 'x-wsx-schema': schema })
    }
  }
  return params
}

function describeThrottles (action: ActionDescription): JsonObject[] {
  return action.throttles.map((t) => ({ bucket: t.bucket, max: t.max, window_ms: t.windowMs, key: t.key }))
}

interface Builder {
  key: string
  messages: JsonObject
  operations: JsonObject
}

function ref (path: string): JsonObject {
  return { $ref: path }
}

/** Adds a message to the channel and returns a reference to it. */
function addMessage (b: Builder, key: string, msg: JsonObject): JsonObject {
  b.messages[key] = msg
  return ref(`#/channels/${b.key}/messages/${key}`)
}

function addAction (b: Builder, action: ActionDescription, errorRef: JsonObject): void {
  const request = addMessage(b, `${action.name}.request`,
    message(action.name, requestEnvelope(action.name, action.request ?? { type: 'object' }), action.summary))
  const reply = addMessage(b, `${action.name}.reply`,
    message(`${action.name} reply`, replyEnvelope(action.response ?? {})))
  const throttles = describeThrottles(action)
  b.operations[`${b.key}.${action.name}`] = {
    action: 'send',
    channel: ref(`#/channels/${b.key}`),
    ...(action.summary && { summary: action.summary }),
    ...(action.description && { description: action.description }),
    messages: [request],
    reply: { channel: ref(`#/channels/${b.key}`), messages: [reply, errorRef] },
    ...(!action.public && { security: [ref(`#/components/securitySchemes/${SECURITY_SCHEME}`)] }),
    'x-wsx-public': action.public,
    ...(throttles.length > 0 && { 'x-wsx-throttle': throttles })
  }
}

/** `offset`, `epoch` (and `group` for route groups) on events of groups with history (docs/protocol.md#positions-on-events). */
function addPosition (envelope: JsonObject, withGroup: boolean, required: boolean): void {
  const properties = envelope.properties as JsonObject
  properties.offset = { type: 'integer', minimum: 1, description: 'position in the group\'s history (groups and channels with history)' }
  properties.epoch = { type: 'string', maxLength: 64, description: 'changes when the history is lost' }
  if (withGroup) properties.group = { type: 'string', description: 'the route group the event belongs to (groups with history)' }
  if (required) (envelope.required as string[]).push('offset', 'epoch')
}

function addEvent (b: Builder, name: string, schema: PlainSchema, channel?: ChannelDescription): void {
  const prefix = channel ? `channel.${channel.name}.` : 'event.'
  const envelope = eventEnvelope(name, schema, channel && { name: channel.name, params: channel.params })
  // route events may go to groups with history; a channel's events carry positions exactly when it has history
  if (!channel) addPosition(envelope, true, false)
  else if (channel.history) addPosition(envelope, false, true)
  const summary = channel ? `${name} to subscribers of channel ${channel.name}` : `${name} server event`
  const msg = addMessage(b, `${prefix}${name}`, message(name, envelope, summary))
  b.operations[`${b.key}.${prefix}${name}`] = {
    action: 'receive',
    channel: ref(`#/channels/${b.key}`),
    summary,
    messages: [msg]
  }
}

/** The built-ins of the protocol (docs/protocol.md#built-in-actions) that this route actually answers. */
function addBuiltins (b: Builder, route: RouteDescription, errorRef: JsonObject): void {
  const publicNames = publicActions(route)
  const authorizedData = {
    type: 'object',
    properties: { authenticated: { type: 'boolean', const: true }, via: { type: 'string', enum: ['upgrade', 'authorize'] } }
  }
  // the same frame is the first frame after an authenticated upgrade and the reply to socket.authorize (with its id)
  const authorized = eventEnvelope(ServerEvent.authorized, authorizedData)
  ;(authorized.properties as JsonObject).id = idSchema()
  const authorizedRef = addMessage(b, ServerEvent.authorized, message(ServerEvent.authorized, authorized, 'authenticated, at the upgrade or by socket.authorize'))
  b.operations[`${b.key}.${ServerEvent.authorized}`] = { action: 'receive', channel: ref(`#/channels/${b.key}`), messages: [authorizedRef] }

  const ping = addMessage(b, `${BuiltinAction.ping}.request`, message(BuiltinAction.ping, requestEnvelope(BuiltinAction.ping, { type: 'object' }), 'liveness for browsers'))
  const pong = addMessage(b, `${BuiltinAction.ping}.reply`, message(`${BuiltinAction.ping} reply`, replyEnvelope({ type: 'object', properties: { pong: { type: 'boolean', const: true } } })))
  b.operations[`${b.key}.${BuiltinAction.ping}`] = {
    action: 'send', channel: ref(`#/channels/${b.key}`), messages: [ping], reply: { channel: ref(`#/channels/${b.key}`), messages: [pong] }, 'x-wsx-public': true
  }

  if (route.auth.handshake) {
    const hs = route.auth.handshake
    const handshake = addMessage(b, ServerEvent.handshake, message(ServerEvent.handshake, eventEnvelope(ServerEvent.handshake, {
      type: 'object',
      properties: {
        authorize: { type: 'string', const: BuiltinAction.authorize },
        attempts: { type: 'integer', const: hs.attempts },
        lock_seconds: { type: 'number', const: hs.lockSeconds },
        timeout_seconds: { type: 'number', const: hs.timeoutSeconds },
        allow_unauth: { type: 'array', items: { type: 'string', enum: publicNames.length ? publicNames : [''] } }
      }
    }), 'first frame when the upgrade was not authenticated'))
    b.operations[`${b.key}.${ServerEvent.handshake}`] = { action: 'receive', channel: ref(`#/channels/${b.key}`), messages: [handshake] }
    const authorize = addMessage(b, `${BuiltinAction.authorize}.request`, message(BuiltinAction.authorize,
      requestEnvelope(BuiltinAction.authorize, { type: 'object', required: ['token'], properties: { token: { type: 'string' } } }),
      'in-band authentication (or refresh) with a bearer token'))
    b.operations[`${b.key}.${BuiltinAction.authorize}`] = {
      action: 'send', channel: ref(`#/channels/${b.key}`), messages: [authorize], reply: { channel: ref(`#/channels/${b.key}`), messages: [authorizedRef, errorRef] }, 'x-wsx-public': true
    }
    const expired = addMessage(b, ServerEvent.expired, message(ServerEvent.expired, eventEnvelope(ServerEvent.expired,
      { type: 'object', properties: { grace_seconds: { type: 'number' } } }), 'the credential expired: send socket.authorize within grace_seconds'))
    b.operations[`${b.key}.${ServerEvent.expired}`] = { action: 'receive', channel: ref(`#/channels/${b.key}`), messages: [expired] }
  }

  const resync = addMessage(b, ServerEvent.resync, message(ServerEvent.resync, eventEnvelope(ServerEvent.resync,
    { type: 'object', properties: { groups: { type: 'array', items: { type: 'string' } } } }), 'pub/sub was interrupted: refetch what may have been missed'))
  b.operations[`${b.key}.${ServerEvent.resync}`] = { action: 'receive', channel: ref(`#/channels/${b.key}`), messages: [resync] }

  const position = { type: 'object', properties: { offset: { type: 'integer', minimum: 0 }, epoch: { type: 'string', maxLength: 64 }, last: { type: 'integer', minimum: 1 } } }
  const joined = addMessage(b, ServerEvent.groupJoined, message(ServerEvent.groupJoined, eventEnvelope(ServerEvent.groupJoined, {
    type: 'object', properties: { group: { type: 'string' }, epoch: { type: 'string' }, offset: { type: 'integer', minimum: 0 } }
  }), 'joined a group with history: answer with group.recover (its live events wait for it, holdMs)'))
  b.operations[`${b.key}.${ServerEvent.groupJoined}`] = { action: 'receive', channel: ref(`#/channels/${b.key}`), messages: [joined] }
  const recover = addMessage(b, `${BuiltinAction.recover}.request`, message(BuiltinAction.recover, requestEnvelope(BuiltinAction.recover, {
    type: 'object', required: ['group'], properties: { group: { type: 'string' }, ...(position.properties) }
  }), 'replays what was missed in a group with history since a position ({offset, epoch}), or its newest events ({last})'))
  const recovered = addMessage(b, `${BuiltinAction.recover}.reply`, message(`${BuiltinAction.recover} reply`, replyEnvelope({
    type: 'object', properties: { group: { type: 'string' }, recovered: { type: 'boolean' }, epoch: { type: 'string' }, offset: { type: 'integer', minimum: 0 } }
  })))
  b.operations[`${b.key}.${BuiltinAction.recover}`] = {
    action: 'send',
    channel: ref(`#/channels/${b.key}`),
    messages: [recover],
    reply: { channel: ref(`#/channels/${b.key}`), messages: [recovered, errorRef] },
    security: [ref(`#/components/securitySchemes/${SECURITY_SCHEME}`)],
    'x-wsx-public': false
  }

  if (route.channels.length > 0) {
    const names = route.channels.map((c) => c.name)
    for (const verb of [BuiltinAction.subscribe, BuiltinAction.unsubscribe]) {
      const req = addMessage(b, `${verb}.request`, message(verb, requestEnvelope(verb, {
        type: 'object',
        required: ['channel', 'params'],
        properties: { channel: { type: 'string', enum: names }, params: { type: 'object' }, ...(verb === BuiltinAction.subscribe && { recover: position }) }
      })))
      const rep = addMessage(b, `${verb}.reply`, message(`${verb} reply`, replyEnvelope({ type: 'object' })))
      b.operations[`${b.key}.${verb}`] = {
        action: 'send',
        channel: ref(`#/channels/${b.key}`),
        messages: [req],
        reply: { channel: ref(`#/channels/${b.key}`), messages: [rep, errorRef] },
        security: [ref(`#/components/securitySchemes/${SECURITY_SCHEME}`)],
        'x-wsx-public': false
      }
    }
  }
}

function describeChannels (route: RouteDescription): JsonObject[] {
  return route.channels.map((c) => ({
    name: c.name,
    params: c.params,
    events: Object.keys(c.events),
    ...(c.history && { history: { size: c.history.size, ttl_ms: c.history.ttlMs, max_replay: c.history.maxReplay } }),
    ...(c.summary && { summary: c.summary })
  }))
}

function publicActions (route: RouteDescription): string[] {
  return route.actions.filter((a) => a.public).map((a) => a.name)
}

/**
 * Builds an AsyncAPI 3.0.0 document describing every route: actions (request, reply,
 * errors), server events, channel subscriptions, which actions are public, throttles,
 * and the protocol's error and close codes. The result is plain JSON.
 * @example buildAsyncApi(app.wsx.describeRoutes(), { info: { title: 'Chat', version: '1.0.0' } })
 */
export function buildAsyncApi (routes: readonly RouteDescription[], opts: AsyncApiOptions = {}): JsonObject {
  const channels: JsonObject = {}
  const operations: JsonObject = {}
  const taken = new Set<string>()
  for (const route of routes) {
    const key = channelKey(route.url, taken)
    const b: Builder = { key, messages: {}, operations }
    const errorRef = addMessage(b, 'error', message('error', errorEnvelope(), 'an error reply (see the error codes of the fastify-wsx protocol)'))
    for (const action of route.actions) addAction(b, action, errorRef)
    for (const [name, schema] of Object.entries(route.events)) addEvent(b, name, schema)
    for (const channel of route.channels) {
      for (const [name, schema] of Object.entries(channel.events)) addEvent(b, name, schema, channel)
    }
    addBuiltins(b, route, errorRef)
    const parameters = routeParameters(route)
    const hs = route.auth.handshake
    channels[key] = {
      address: toAddress(route.url),
      ...(route.summary && { summary: route.summary }),
      ...(route.description && { description: route.description }),
      ...(Object.keys(parameters).length > 0 && { parameters }),
      messages: b.messages,
      'x-wsx-auth': {
        upgrade: route.auth.upgrade,
        handshake: hs ? { attempts: hs.attempts, lock_seconds: hs.lockSeconds, timeout_seconds: hs.timeoutSeconds } : false,
        public_actions: publicActions(route)
      },
      ...(route.channels.length > 0 && { 'x-wsx-channels': describeChannels(route) })
    }
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: opts.info?.title ?? 'fastify-wsx API',
      version: opts.info?.version ?? '1.0.0',
      description: opts.info?.description ?? 'WebSocket routes served by fastify-wsx: JSON envelopes {id, action, data, trace_id}; replies {id, ok, data | error}.'
    },
    ...(opts.servers && { servers: opts.servers }),
    defaultContentType: 'application/json',
    channels,
    operations,
    components: {
      securitySchemes: {
        [SECURITY_SCHEME]: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'A Bearer token in the upgrade\'s Authorization header, or sent in-band with socket.authorize after socket.handshake.'
        }
      }
    },
    'x-wsx-error-codes': { ...Detail },
    'x-wsx-close-codes': Object.fromEntries(Object.values(CloseCode).map((code) => [String(code), closeMeanings[code]]))
  }
}

/** Minimal YAML for the document: every scalar is a JSON-quoted string (valid YAML 1.2). */
export function toYaml (value: unknown, indent = ''): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null)
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]'
    return value.map((v) => `\n${indent}- ${toYaml(v, indent + '  ').replace(/^\n\s*/, '')}`).join('')
  }
  const entries = Object.entries(value as JsonObject)
  if (entries.length === 0) return '{}'
  return entries.map(([k, v]) => {
    const inner = toYaml(v, indent + '  ')
    return `\n${indent}${JSON.stringify(k)}:${inner.startsWith('\n') ? '' : ' '}${inner}`
  }).join('')
}
