// Identity helpers whose only job is type inference: each action's `msg.data` and return
// type come from its own TypeBox schemas, without classes or casts.
import type { ActionOptions, AnyAction, AnyChannel, ChannelOptions, ReplyOf } from '../../types/route.js'
import type { DefinedRoute, RouteOptions } from '../../types/options.js'
import { resolveDefinedRoute } from './route.js'
import type { WsxSchema } from '../../types/schema.js'

/**
 * Declares one action with `data` and the reply typed from its schemas. Inside a route,
 * prefer the `action` that `actions: (action) => ({ ... })` hands over: it also types
 * `conn.params`, `conn.query` and `conn.send` from the route.
 * @example
 * 'chat.send': action({
 *   request: Type.Object({ text: Type.String() }),
 *   response: Type.Object({ text: Type.String() }),
 *   handler: async (msg) => ({ text: msg.data.text })
 * })
 */
export function action<
  Req extends WsxSchema | undefined = undefined,
  Res extends WsxSchema | undefined = undefined,
  const Pub extends boolean = false,
  Obj = undefined,
  Ret extends ReplyOf<Res> = ReplyOf<Res>
> (def: ActionOptions<Req, Res, Pub, Obj, Ret>): ActionOptions<NoInfer<Req>, NoInfer<Res>, NoInfer<Pub>, NoInfer<Obj>, NoInfer<Ret>> {
  // NoInfer: a surrounding route's contextual type must not feed back into Pub/Req/Res
  return def
}

/** Declares a channel with `params` typed from its schema. */
export function defineChannel<P extends WsxSchema, const E extends Record<string, WsxSchema> = Record<never, WsxSchema>> (def: ChannelOptions<P, E>): ChannelOptions<NoInfer<P>, NoInfer<E>> {
  return def
}

/**
 * Declares a route outside a plugin, so its type can be shared with the typed client:
 * `createClient<typeof chatRoute>(url)`. Pass it to `scope.wsx.route()`.
 */
export function defineRoute<
  const A extends Record<string, AnyAction>,
  const C extends Record<string, AnyChannel> = Record<never, AnyChannel>,
  const E extends Record<string, WsxSchema> = Record<never, WsxSchema>,
  P extends WsxSchema | undefined = undefined,
  Q extends WsxSchema | undefined = undefined
> (def: RouteOptions<A, C, E, P, Q>): DefinedRoute<A, C, E, P, Q> {
  return resolveDefinedRoute(def as unknown as RouteOptions) as unknown as DefinedRoute<A, C, E, P, Q>
}
