/**
 * Interfaces an application augments to type fastify-wsx end to end, the way
 * `@fastify/jwt` lets apps augment `FastifyJWT`.
 *
 * @example
 * declare module 'fastify-wsx' {
 *   interface WsxRegistry {
 *     user: { sub: string, role: 'admin' | 'user' }
 *     events: { 'chat.message': { user: string, text: string, room: string } }
 *   }
 * }
 */

export interface WsxRegistry {}

/** The identity a strategy attaches when nothing is declared: JWT-like claims with a `sub`. */
export interface WsxDefaultUser {
  sub: string
  [claim: string]: unknown
}

/** The authenticated user's type: `WsxRegistry['user']` when declared, else {@link WsxDefaultUser}. */
export type WsxUserOf = WsxRegistry extends { user: infer U } ? U : WsxDefaultUser

/** Server events sent with `app.wsx.broadcast()` / `conn.send()`: `WsxRegistry['events']` when declared. */
export type WsxEventMap = WsxRegistry extends { events: infer E extends Record<string, unknown> } ? E : Record<string, unknown>
