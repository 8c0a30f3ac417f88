// The plan of the scale scenarios (issue 16): cost curves over N idle connections, the
// shape of the app (actions, groups), the codec comparison and 1-2-4 instances on Redis
// (one redis-server, then a 3-master Redis Cluster; both take the `instances` plan).
// Kept apart from plan.ts so scenarios can be added to the registry without touching it.

export const SCALE_SCENARIOS = ['curve', 'shape', 'codec', 'instances', 'instances-cluster'] as const
export type ScaleScenario = typeof SCALE_SCENARIOS[number]

export interface ScalePlan {
  /** N idle authenticated connections, grown step by step; sizes over the fd limit are skipped */
  curve: { sizes: number[], heartbeatMs: number, idleWindowMs: number, broadcasts: number, localAddresses: number }
  /** per-message CPU with few/many actions and groups (the same pipeline as /ws/bench) */
  shape: { actions: number[], groups: number[], connections: number, inflight: number, warmupMs: number, windowMs: number }
  /** JSON vs MessagePack on the demo's /ws/bench, windows taken in turns */
  codec: { connections: number, inflight: number, warmupMs: number, windowMs: number }
  /** demo instances on one private redis-server; `receivers` spread evenly over them */
  instances: { counts: number[], receivers: number, broadcasts: number, latencyCount: number, latencyWarmup: number }
}

export const FULL_SCALE_PLAN: ScalePlan = {
  curve: { sizes: [1000, 5000, 10_000, 25_000, 50_000], heartbeatMs: 2000, idleWindowMs: 5000, broadcasts: 5, localAddresses: 4 },
  shape: { actions: [2, 200], groups: [10, 10_000], connections: 50, inflight: 10, warmupMs: 1500, windowMs: 3000 },
  codec: { connections: 50, inflight: 10, warmupMs: 1500, windowMs: 3000 },
  instances: { counts: [1, 2, 4], receivers: 4000, broadcasts: 7, latencyCount: 200, latencyWarmup: 20 }
}

export const QUICK_SCALE_PLAN: ScalePlan = {
  curve: { sizes: [200, 500], heartbeatMs: 500, idleWindowMs: 1000, broadcasts: 2, localAddresses: 2 },
  shape: { actions: [2, 200], groups: [10, 1000], connections: 10, inflight: 4, warmupMs: 300, windowMs: 500 },
  codec: { connections: 10, inflight: 4, warmupMs: 300, windowMs: 500 },
  instances: { counts: [1, 2], receivers: 100, broadcasts: 2, latencyCount: 20, latencyWarmup: 5 }
}
