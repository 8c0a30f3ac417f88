// The one check of a group name on the server side: a name reaches a bus topic (a Redis
// channel) and Redis keys, so it never holds a wildcard, a glob or a separator.
import { GROUP_PATTERN } from '../../protocol/index.js'
import { errors } from '../errors.js'

/** Throws WSX_ERR_GROUP_NAME unless `name` matches GROUP_PATTERN. */
export function assertGroupName (name: unknown): asserts name is string {
  if (typeof name !== 'string' || !GROUP_PATTERN.test(name)) throw new errors.WSX_ERR_GROUP_NAME(String(name))
}
