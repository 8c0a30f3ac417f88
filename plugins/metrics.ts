// Optional Prometheus export of `app.wsx.stats()` through prom-client. The core only
// counts (lib/instance/stats.ts); this plugin turns a snapshot into collectors at scrape time, so
// the hot path never touches prom-client and nothing here formats exposition text.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import client, { type Metric, type Registry } from 'prom-client'
import type { WsxStatsSnapshot } from '../lib/instance/stats.js'

export interface WsxMetricsOptions {
  /** prom-client registry to register on @default prom-client's default register */
  register?: Registry
  /** metric name prefix @default 'wsx_' */
  prefix?: string
  /** serve the registry's text at this GET path; false to serve nothing @default '/metrics' */
  path?: string | false
}

type Snapshot = () => WsxStatsSnapshot

type Fill = (set: (labels: Record<string, string>, value: number) => void) => void

/** The configuration of a metric filled from the stats snapshot at each scrape (reset first: the snapshot holds totals). */
function collectedBy<M extends { reset (): void }> (name: string, help: string, labelNames: string[], fill: Fill, write: (metric: M, labels: Record<string, string>, value: number) => void) {
  return {
    name,
    help,
    labelNames,
    registers: [],
    collect (this: M) {
      this.reset()
      fill((labels, value) => write(this, labels, value))
    }
  }
}

function counter (name: string, help: string, labelNames: string[], fill: Fill): client.Counter {
  return new client.Counter(collectedBy<client.Counter>(name, help, labelNames, fill, (m, labels, value) => m.inc(labels, value)))
}

function gauge (name: string, help: string, labelNames: string[], fill: Fill): client.Gauge {
  return new client.Gauge(collectedBy<client.Gauge>(name, help, labelNames, fill, (m, labels, value) => m.set(labels, value)))
}

/**
 * The handler latency histogram. prom-client's Histogram only learns through observe(),
 * and the buckets are already counted by the core, so this is a collector object in the
 * shape prom-client's registry reads (`get()`), with seconds as Prometheus expects.
 */
function latencyHistogram (name: string, snap: Snapshot): Metric {
  return {
    name,
    help: 'Time spent in action handlers, in seconds',
    type: 'histogram',
    aggregator: 'sum',
    get: async () => {
      const h = snap().handlerLatencyMs
      return {
        name,
        help: 'Time spent in action handlers, in seconds',
        type: 'histogram',
        aggregator: 'sum',
        values: [
          ...h.buckets.map((b) => ({ metricName: `${name}_bucket`, labels: { le: b.le === '+Inf' ? '+Inf' : b.le / 1000 }, value: b.count })),
          { metricName: `${name}_sum`, labels: {}, value: h.sum / 1000 },
          { metricName: `${name}_count`, labels: {}, value: h.count }
        ]
      }
    },
    reset: () => {}
  } as unknown as Metric
}

/** Every collector, each reading a fresh `snap()` when scraped (a snapshot is a few Maps copied). */
export function createWsxCollectors (snap: Snapshot, prefix = 'wsx_'): Metric[] {
  const p = prefix
  return [
    gauge(`${p}connections_open`, 'Open WebSocket connections on this instance, per route', ['route'], (set) => {
      for (const [route, n] of Object.entries(snap().connections.byRoute)) set({ route }, n)
    }),
    counter(`${p}connections_total`, 'WebSocket connections accepted since start', [], (set) => set({}, snap().connections.total)),
    counter(`${p}messages_received_total`, 'Frames received from clients', [], (set) => set({}, snap().messages.in)),
    counter(`${p}messages_sent_total`, 'Frames sent to clients (replies and events)', [], (set) => set({}, snap().messages.out)),
    counter(`${p}messages_total`, 'Answered messages per action and outcome (ok or a wire error code)', ['action', 'outcome'], (set) => {
      for (const [action, outcomes] of Object.entries(snap().messages.byAction)) {
        for (const [outcome, n] of Object.entries(outcomes)) set({ action, outcome }, n)
      }
    }),
    latencyHistogram(`${p}handler_duration_seconds`, snap),
    counter(`${p}throttled_total`, 'Messages refused by a throttle', [], (set) => set({}, snap().throttled)),
    counter(`${p}auth_failures_total`, 'Failed authentications', [], (set) => set({}, snap().authFailures)),
    counter(`${p}closes_total`, 'Closed connections per close code', ['code'], (set) => {
      for (const [code, n] of Object.entries(snap().closes)) set({ code }, n)
    }),
    counter(`${p}bus_published_total`, 'Frames published on the bus', [], (set) => set({}, snap().bus.published)),
    counter(`${p}bus_received_total`, 'Frames received from the bus', [], (set) => set({}, snap().bus.received)),
    gauge(`${p}bus_up`, '1 when the pub/sub backend is reachable', [], (set) => set({}, snap().bus.up ? 1 : 0))
  ]
}

const metricsPlugin: FastifyPluginAsync<WsxMetricsOptions> = async function wsxMetrics (fastify: FastifyInstance, opts) {
  const register = opts.register ?? client.register
  const collectors = createWsxCollectors(() => fastify.wsx.stats(), opts.prefix)
  for (const metric of collectors) register.registerMetric(metric)
  // a closed app must not keep answering scrapes (nor block a new app's registration)
  fastify.addHook('onClose', async () => {
    for (const metric of collectors) register.removeSingleMetric((metric as unknown as { name: string }).name)
  })

  const path = opts.path ?? '/metrics'
  if (path !== false) {
    fastify.get(path, async (_request, reply) => {
      reply.type(register.contentType)
      return register.metrics()
    })
  }
}

/**
 * Prometheus metrics for fastify-wsx, with prom-client. Register after fastify-wsx.
 * @example await app.register(wsxMetrics, { register: new Registry(), path: '/metrics' })
 */
export const wsxMetrics = fp(metricsPlugin, { fastify: '5.x', name: 'fastify-wsx-metrics', dependencies: ['fastify-wsx'] })
export default wsxMetrics
