// Who a connection is, as one string: the key of the per-user connection cap, of
// `sendToUser` / `disconnectUser`, and of the check that a refreshed token names the same user.

/** A stable key for a user: its `sub`, `id` or `username` claim, else null. */
export function userKeyOf (user: unknown): string | null {
  if (typeof user === 'string') return user
  if (typeof user !== 'object' || user === null) return null
  const u = user as Record<string, unknown>
  for (const key of ['sub', 'id', 'username']) {
    const v = u[key]
    if (typeof v === 'string' || typeof v === 'number') return String(v)
  }
  return null
}
