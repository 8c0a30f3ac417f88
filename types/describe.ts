// What `app.wsx.describeRoutes()` returns (lib/boot/describe.ts builds it): each route as
// plain JSON data, for documentation generators, the playground and apps.

/** A JSON Schema, as plain JSON. */
export type PlainSchema = Record<string, unknown>

/** One throttle of an action. `key: 'custom'` is a key function. */
export interface ThrottleDescription {
  /** the counter's name: the throttle's `name`, else the action's name for the first throttle and `<action>#i` for the one at index i */
  bucket: string
  max: number
  windowMs: number
  key: 'user' | 'ip' | 'connection' | 'custom'
}

/** One action a route declares (built-ins are listed in {@link RouteDescription.builtins}). */
export interface ActionDescription {
  name: string
  /** allowed before authentication */
  public: boolean
  summary?: string
  description?: string
  /** the `data` schema of the request; null: the action takes any data */
  request: PlainSchema | null
  /** the `data` schema of the reply; null: not declared */
  response: PlainSchema | null
  throttles: ThrottleDescription[]
  /** the permission functions' names, in order (`anonymous` for an unnamed one) */
  permissions: string[]
}

/** One channel a route offers to `channel.subscribe`. */
export interface ChannelDescription {
  name: string
  params: PlainSchema
  /** events its subscribers receive, by name */
  events: Record<string, PlainSchema>
  /** bounded history with offsets (README, Delivery and recovery); null: none */
  history: { size: number, ttlMs: number, maxReplay: number } | null
  summary?: string
}

/** One WebSocket route, as `app.wsx.describeRoutes()` returns it. */
export interface RouteDescription {
  /** the full URL pattern, the scope's prefix included (`/ws/chat/:room`) */
  url: string
  summary?: string
  description?: string
  /** the path parameters in URL order, each with its schema from `schema.params` (null: none declared) */
  params: Array<{ name: string, schema: PlainSchema | null }>
  /** the `schema.querystring` of the upgrade; null: none */
  querystring: PlainSchema | null
  auth: {
    /** strategies run on the upgrade's HTTP request */
    upgrade: boolean
    /** the in-band handshake (`socket.handshake`, then `socket.authorize`); null: off */
    handshake: { attempts: number, lockSeconds: number, timeoutSeconds: number } | null
  }
  /** clients may pick the `wsx.v1.msgpack` subprotocol */
  msgpack: boolean
  /** connections join groups computed by the route's `groups` option once authenticated */
  groups: boolean
  actions: ActionDescription[]
  /** the built-in actions this route answers (docs/protocol.md#built-in-actions) */
  builtins: string[]
  /** server events the route declares, by name */
  events: Record<string, PlainSchema>
  channels: ChannelDescription[]
}
