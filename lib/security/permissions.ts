// Built-in permissions (DRF's). A permission is an async check `(msg, conn) => boolean`;
// these build the common ones from the user's claims.
import type { Permission, SomeConnection } from '../../types/route.js'

/** A check that reads nothing route-specific: it fits any action, public ones included. */
type AnyConnectionPermission = Permission<unknown, SomeConnection>

function claims (user: unknown): Record<string, unknown> {
  return typeof user === 'object' && user !== null ? user as Record<string, unknown> : {}
}

/** Allows authenticated connections only (useful on public actions with extra rules). */
export const isAuthenticated: AnyConnectionPermission = function isAuthenticated (_msg, conn) {
  return conn.authenticated
}

/**
 * Allows users whose `role` claim (or any entry of `roles`) is one of `roles`.
 * @example permissions: [hasRole('admin')]
 */
export function hasRole (...roles: string[]): AnyConnectionPermission {
  return function hasRolePermission (_msg, conn) {
    const c = claims(conn.user)
    if (typeof c.role === 'string' && roles.includes(c.role)) return true
    return Array.isArray(c.roles) && c.roles.some((r) => roles.includes(r as string))
  }
}

/**
 * Allows users whose `scope` claim (space-separated, OAuth style) or `scopes` array has
 * every one of `scopes`.
 */
export function hasScope (...scopes: string[]): AnyConnectionPermission {
  return function hasScopePermission (_msg, conn) {
    const c = claims(conn.user)
    const granted = new Set<string>(typeof c.scope === 'string' ? c.scope.split(' ') : Array.isArray(c.scopes) ? c.scopes as string[] : [])
    return scopes.every((s) => granted.has(s))
  }
}

/** Allows when every check allows. */
export function allOf<O, C = SomeConnection> (...checks: Array<Permission<O, C>>): Permission<O, C> {
  return async function allOfPermission (msg, conn) {
    for (const check of checks) if (await check.call(this, msg, conn) !== true) return false
    return true
  }
}

/** Allows when any check allows. */
export function anyOf<O, C = SomeConnection> (...checks: Array<Permission<O, C>>): Permission<O, C> {
  return async function anyOfPermission (msg, conn) {
    for (const check of checks) if (await check.call(this, msg, conn) === true) return true
    return false
  }
}
