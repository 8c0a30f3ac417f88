// Every Redis key name the plugin uses is built here, so features agree on one scheme.
// Redis Cluster runs a script (or MULTI) only when all its keys hash to one slot: keys
// touched together share a hash tag, the `{…}` part that alone decides the slot. A
// single-key command needs no tag, and keys without one spread over the cluster.

/** `{namespace:area}`: keys that start with it live on one cluster slot. */
export function hashTag (namespace: string, area: string): string {
  return `{${namespace}:${area}}`
}

/** The key names of one plugin namespace. */
export interface RedisKeys {
  /** prefix of throttle counters (one key per counter and window) */
  readonly rateLimitPrefix: string
  /** the handshake lock of one client key */
  lock (key: string): string
  /** prefix of every presence key; one hash tag, as the presence scripts touch several */
  readonly presenceBase: string
  /**
   * A hash tag per group for a feature whose keys of one group are touched together
   * (e.g. a group's history stream and its sequence counter): `{namespace:area:group}`.
   */
  groupTag (area: string, group: string): string
}

export function redisKeys (namespace: string): RedisKeys {
  return {
    rateLimitPrefix: `${namespace}:rl:`,
    lock: (key) => `${namespace}:lock:${key}`,
    presenceBase: hashTag(namespace, 'presence'),
    groupTag: (area, group) => hashTag(namespace, `${area}:${group}`)
  }
}
