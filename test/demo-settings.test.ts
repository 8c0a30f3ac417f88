// The demo's Redis settings: WSX_DEMO_REDIS_CLUSTER lists a cluster's seed nodes (the bench's
// instances-cluster scenario starts the demo with it); it excludes WSX_DEMO_REDIS_URL.
import t from 'tap'
import { readSettings } from '../examples/chat/settings.js'
import { buildDemo } from '../examples/chat/app.js'

t.test('WSX_DEMO_REDIS_CLUSTER: host:port seed nodes, separated by commas', async (t) => {
  t.same(readSettings({ WSX_DEMO_REDIS_CLUSTER: '127.0.0.1:7000, 127.0.0.1:7001,redis-3:7002' }).redisCluster, [
    { host: '127.0.0.1', port: 7000 },
    { host: '127.0.0.1', port: 7001 },
    { host: 'redis-3', port: 7002 }
  ])
  t.equal(readSettings({}).redisCluster, undefined, 'unset: no cluster')
  t.equal(readSettings({ WSX_DEMO_REDIS_CLUSTER: '' }).redisCluster, undefined, 'empty: no cluster')
  for (const bad of ['127.0.0.1', '127.0.0.1:', ':7000', '127.0.0.1:7000,,127.0.0.1:7001', 'redis://127.0.0.1:7000']) {
    t.throws(() => readSettings({ WSX_DEMO_REDIS_CLUSTER: bad }), /WSX_DEMO_REDIS_CLUSTER takes host:port/, `refused: "${bad}"`)
  }
})

t.test('a Redis URL and a cluster together are refused', async (t) => {
  await t.rejects(buildDemo({ redisUrl: 'redis://127.0.0.1:6379', redisCluster: [{ host: '127.0.0.1', port: 7000 }] }, { logger: false }), /not both/)
})
