// `app.wsx.describeRoutes()`: the one public reading of the compiled route table. Plain
// JSON data (schemas as JSON Schema, no functions, no TypeBox symbols), built afresh on each
// call, so AsyncAPI, the playground and apps read the same facts and none of them depends
// on the internal RouteContext.
import { BuiltinAction } from '../../protocol/index.js'
import type { WsxSchema } from '../../types/schema.js'
import type { CompiledAction, CompiledChannel, RouteContext } from './route.js'
import type { ActionDescription, ChannelDescription, PlainSchema, RouteDescription } from '../../types/describe.js'

/**
 * TypeBox schemas carry symbol keys (`[Kind]`, `[OptionalKind]`) and may hold functions in
 * unusual options; a JSON round trip keeps exactly the JSON Schema part.
 */
export function toPlainSchema (schema: WsxSchema): PlainSchema {
  return JSON.parse(JSON.stringify(schema)) as PlainSchema
}

function plainOrNull (schema: WsxSchema | undefined): PlainSchema | null {
  return schema === undefined ? null : toPlainSchema(schema)
}

function plainMap (schemas: Record<string, WsxSchema> | undefined): Record<string, PlainSchema> {
  return Object.fromEntries(Object.entries(schemas ?? {}).map(([name, schema]) => [name, toPlainSchema(schema)]))
}

function describeAction (action: CompiledAction): ActionDescription {
  return {
    name: action.name,
    public: action.public,
    ...(action.summary && { summary: action.summary }),
    ...(action.description && { description: action.description }),
    request: plainOrNull(action.request),
    response: plainOrNull(action.response),
    throttles: action.throttles.map((t) => ({ bucket: t.bucket, max: t.max, windowMs: t.windowMs, key: typeof t.key === 'function' ? 'custom' : t.key })),
    permissions: action.permissions.map((p) => p.name || 'anonymous')
  }
}

function describeChannel (channel: CompiledChannel): ChannelDescription {
  const h = channel.history
  return {
    name: channel.name,
    params: toPlainSchema(channel.params),
    events: plainMap(channel.events),
    history: h === null ? null : { size: h.size, ttlMs: h.ttlMs, maxReplay: h.maxReplay },
    ...(channel.summary && { summary: channel.summary })
  }
}

function builtinsOf (route: RouteContext): string[] {
  const names: string[] = [BuiltinAction.ping]
  if (route.handshake) names.push(BuiltinAction.authorize)
  names.push(BuiltinAction.recover)
  if (route.channels.size > 0) names.push(BuiltinAction.subscribe, BuiltinAction.unsubscribe)
  return names
}

/** Describes one compiled route. */
export function describeRoute (route: RouteContext): RouteDescription {
  const { options } = route
  const paramSchemas = (options.schema?.params as { properties?: Record<string, WsxSchema> } | undefined)?.properties
  const hs = route.handshake
  return {
    url: route.url,
    ...(options.summary && { summary: options.summary }),
    ...(options.description && { description: options.description }),
    params: [...route.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => {
      const name = m[1] as string
      return { name, schema: plainOrNull(paramSchemas?.[name]) }
    }),
    querystring: plainOrNull(options.schema?.querystring),
    auth: {
      upgrade: route.upgradeStrategies.length > 0,
      handshake: hs === null ? null : { attempts: hs.attempts, lockSeconds: hs.lockSeconds, timeoutSeconds: hs.timeoutSeconds }
    },
    msgpack: route.msgpack,
    groups: route.groups !== null,
    actions: [...route.actions.values()].map(describeAction),
    builtins: builtinsOf(route),
    events: plainMap(options.events),
    channels: [...route.channels.values()].map(describeChannel)
  }
}

/** Describes every route, in the order they were declared. */
export function describeRoutes (routes: readonly RouteContext[]): RouteDescription[] {
  return routes.map(describeRoute)
}
