/**
 * Interfaces an application augments to type fastify-wsx app-wide, the way `@fastify/jwt`
 * lets apps augment `FastifyJWT`. Both members are optional:
 *
 * - `user`: the type of `conn.user` (what the strategies put on `request.user`);
 * - `events`: the events `app.wsx.broadcast` / `publish` / `sendToUser` take anywhere in the
 *   app. Point it at the schemas the routes already declare (`typeof chatEvents`); a map of
 *   plain types works too. A route's own actions and its route handle are typed from the
 *   route's `events` without it.
 *
 * @example
 * const chatEvents = { 'chat.message': Type.Object({ text: Type.String() }) }
 * declare module 'fastify-wsx' {
 *   interface WsxRegistry {
 *     user: { sub: string, role: 'admin' | 'user' }
 *     events: typeof chatEvents
 *   }
 * }
 */
import type { StaticOf, WsxSchema } from './schema.js'

export interface WsxRegistry {}

/** The identity a strategy attaches when nothing is declared: JWT-like claims with a `sub`. */
export interface WsxDefaultUser {
  sub: string
  [claim: string]: unknown
}

/** The authenticated user's type: `WsxRegistry['user']` when declared, else {@link WsxDefaultUser}. */
export type WsxUserOf = WsxRegistry extends { user: infer U } ? U : WsxDefaultUser

/**
 * A registry event entry: a TypeBox schema stands for its static type, anything else for
 * itself. Distributive on purpose: `broadcast(group, name, { ... })` reads it for a generic
 * name, and the tuple form makes TypeScript expand TypeBox's static types until it gives up.
 */
type EventData<V> = V extends WsxSchema ? StaticOf<V> : V

/**
 * Event name → data for `app.wsx.broadcast()` / `publish()` / `sendToUser()`: from
 * `WsxRegistry['events']` when declared, else any name with any JSON data.
 */
export type WsxEventMap = WsxRegistry extends { events: infer E extends object }
  ? { [K in keyof E & string]: EventData<E[K]> }
  : Record<string, unknown>
