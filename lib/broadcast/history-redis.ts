// History on Redis Streams, shared by every instance. One Lua script appends the event
// (XADD … MAXLEN ~ size) and publishes it on the group's bus topic in the packet format
// mqemitter-redis reads, so the offset order and the publish order are the same on every
// subscriber: Redis runs a script atomically. Keys share a hash tag per group, so both
// keys of a group live in one Redis Cluster slot:
//   <namespace>:{<group>}:h  the stream (events, ids 0-<offset>)
//   <namespace>:{<group>}:m  a hash { epoch, top } (the epoch and the last offset)
import type { Redis } from 'ioredis'
import { newEpoch, type HistoryConfig, type HistoryRead, type HistoryStore, type Position, type StoredEvent } from './history.js'
import { BusUnavailableError } from '../errors.js'

// Creates the group's history (new epoch, old stream dropped) when its meta is missing:
// Redis flushed or restarted without persistence, or the group was quiet past the meta TTL.
const INIT = `
local epoch = redis.call('HGET', KEYS[2], 'epoch')
local top = 0
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'top', 0)
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
else
  top = tonumber(redis.call('HGET', KEYS[2], 'top'))
end
`

// KEYS: stream, meta. ARGV: new epoch, meta ttl, topic, frame head, size, ttl, exclude ('' none).
const PUBLISH = INIT + `
top = redis.call('HINCRBY', KEYS[2], 'top', 1)
local frame = ARGV[4] .. ',"offset":' .. top .. ',"epoch":"' .. epoch .. '"}'
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '0-' .. top, 'f', frame)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local msg = { topic = ARGV[3], v = 1, frame = frame, offset = top, epoch = epoch }
if ARGV[7] ~= '' then msg.exclude = ARGV[7] end
redis.call('PUBLISH', ARGV[3], cmsgpack.pack({ id = epoch .. ':' .. top, msg = msg }))
return { top, epoch }
`

// KEYS: stream, meta. ARGV: new epoch, meta ttl, since (< 0: the newest -since), max count.
const READ = INIT + `
local since = tonumber(ARGV[3])
if since < 0 then since = math.max(0, top + since) end
if top - since > tonumber(ARGV[4]) then return { epoch, top, 1, {} } end
if since >= top then return { epoch, top, 0, {} } end
return { epoch, top, 0, redis.call('XRANGE', KEYS[1], '(0-' .. since, '+') }
`

type StreamEntry = [string, string[]]

interface HistoryCommands {
  wsxHistoryPublish (stream: string, meta: string, ...args: Array<string | number>): Promise<[number, string]>
  wsxHistoryRead (stream: string, meta: string, ...args: Array<string | number>): Promise<[string, number, number, StreamEntry[]]>
}

export class RedisHistory implements HistoryStore {
  private readonly redis: Redis & HistoryCommands
  private readonly namespace: string
  private readonly topicOf: (group: string) => string

  /** `redis` is the stores' client (no offline queue, command timeout): a dead Redis fails fast. */
  constructor (redis: Redis, opts: { namespace: string, topicOf: (group: string) => string }) {
    this.redis = redis as Redis & HistoryCommands
    this.namespace = opts.namespace
    this.topicOf = opts.topicOf
    if (typeof this.redis.wsxHistoryPublish !== 'function') {
      redis.defineCommand('wsxHistoryPublish', { numberOfKeys: 2, lua: PUBLISH })
      redis.defineCommand('wsxHistoryRead', { numberOfKeys: 2, lua: READ })
    }
  }

  /** The stream and meta keys of a group (hash-tagged by group). */
  keys (group: string): [string, string] {
    const base = `${this.namespace}:{${group}}:`
    return [base + 'h', base + 'm']
  }

  async publish (group: string, cfg: HistoryConfig, head: string, exclude?: string): Promise<Position> {
    const [stream, meta] = this.keys(group)
    try {
      const [offset, epoch] = await this.redis.wsxHistoryPublish(stream, meta, newEpoch(), cfg.metaTtlMs, this.topicOf(group), head, cfg.size, cfg.ttlMs, exclude ?? '')
      return { offset: Number(offset), epoch: String(epoch) }
    } catch (err) {
      throw new BusUnavailableError('history publish failed', { cause: err })
    }
  }

  async read (group: string, cfg: HistoryConfig, since: number, maxCount: number): Promise<HistoryRead> {
    const [stream, meta] = this.keys(group)
    const [epoch, top, tooMany, entries] = await this.redis.wsxHistoryRead(stream, meta, newEpoch(), cfg.metaTtlMs, since, maxCount)
    const events: StoredEvent[] = []
    for (const [id, fields] of entries) {
      const frame = fields[1]
      if (typeof frame === 'string') events.push({ offset: Number(id.slice(2)), frame })
    }
    return { epoch: String(epoch), top: Number(top), events, tooMany: Number(tooMany) === 1 }
  }

  async close (): Promise<void> {
    // the client belongs to the stores; the plugin closes it
  }
}
