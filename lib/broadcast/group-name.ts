// The checks of the names that reach bus topics (Redis channels) and Redis keys: group
// names and the namespace in front of them. Neither may hold a wildcard, a glob or a separator.
import { GROUP_PATTERN } from '../../protocol/index.js'
import { errors } from '../errors.js'

/** What `namespace` may be: it prefixes every topic and key the plugin uses. */
const NAMESPACE_PATTERN = /^[A-Za-z0-9_-]{1,32}$/

/** Throws WSX_ERR_OPTS_INVALID unless `namespace` is 1-32 characters of [A-Za-z0-9_-]. */
export function assertNamespace (namespace: unknown, what = 'namespace'): asserts namespace is string {
  if (typeof namespace !== 'string' || !NAMESPACE_PATTERN.test(namespace)) {
    throw new errors.WSX_ERR_OPTS_INVALID(`${what} must be 1-32 characters of [A-Za-z0-9_-]`)
  }
}

/** Throws WSX_ERR_GROUP_NAME unless `name` matches GROUP_PATTERN. */
export function assertGroupName (name: unknown): asserts name is string {
  if (typeof name !== 'string' || !GROUP_PATTERN.test(name)) throw new errors.WSX_ERR_GROUP_NAME(String(name))
}
