import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry
  }
}

/** Requests and latency by method, route and status: counted as each response is sent. */
function httpMetrics (fastify: FastifyInstance, registry: Registry) {
  const labelsOf = ['method', 'route', 'status_code'] as const
  const requests = new Counter({ name: 'http_requests_total', help: 'HTTP requests answered', labelNames: labelsOf, registers: [registry] })
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request to response',
    labelNames: labelsOf,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  fastify.addHook('onResponse', (request, reply, done) => {
    const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: reply.statusCode }
    requests.inc(labels)
    duration.observe(labels, reply.elapsedTime / 1000)
    done()
  })
}

/** Rows, predictions by class, time and failures of the classifier: counted from the classified requests published. */
function classifierMetrics (fastify: FastifyInstance, registry: Registry) {
  const backend = fastify.classifier.backend
  const rows = new Counter({ name: 'mlids_rows_classified_total', help: 'Flows classified', labelNames: ['backend'], registers: [registry] })
  const predictions = new Counter({ name: 'mlids_predictions_total', help: 'Predictions by class', labelNames: ['backend', 'prediction'], registers: [registry] })
  const classifierDuration = new Histogram({
    name: 'mlids_classifier_duration_seconds',
    help: 'Time the classifier took per request',
    labelNames: ['backend'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  })
  const classifierErrors = new Counter({ name: 'mlids_classifier_errors_total', help: 'Requests the classifier failed (5xx)', labelNames: ['backend', 'status_code'], registers: [registry] })
  fastify.classifications.on('classified', ({ predictions: answered, seconds }) => {
    rows.inc({ backend }, answered.length)
    let attacks = 0
    for (const p of answered) attacks += p
    if (attacks > 0) predictions.inc({ backend, prediction: 'attack' }, attacks)
    if (answered.length > attacks) predictions.inc({ backend, prediction: 'benign' }, answered.length - attacks)
    classifierDuration.observe({ backend }, seconds)
  })
  fastify.classifications.on('failed', statusCode => { classifierErrors.inc({ backend, status_code: statusCode }) })
}

/** The notification pipeline and the live stream: read from their own counters at scrape time. */
function notificationMetrics (fastify: FastifyInstance, registry: Registry) {
  // Notification counters live in the publisher; these read them at scrape time.
  const sns = () => fastify.notifications.stats().sns
  outcomeCounter(registry, 'mlids_notifications_total',
    'SNS notifications by outcome: published, retried, spilled (left on disk), dead_lettered, dead_letter_refused (not kept: the dead-letter file is full), replayed, lost',
    ['published', 'retried', 'spilled', 'dead_lettered', 'dead_letter_refused', 'replayed', 'lost'], sns)
  let failuresSeen = 0
  new Counter({ // eslint-disable-line no-new
    name: 'mlids_notifications_spill_write_failures_total',
    help: 'Journal/spill writes that failed: disk full, read-only or missing folder, over NOTIFY_SPILL_MAX_BYTES',
    registers: [registry],
    collect () {
      const stats = sns()
      if (stats === null) return
      this.inc(stats.spill_write_failures - failuresSeen)
      failuresSeen = stats.spill_write_failures
    },
  })
  const gauge = (name: string, help: string, read: (stats: NonNullable<ReturnType<typeof sns>>) => number) =>
    new Gauge({ name, help, registers: [registry], collect () { const stats = sns(); this.set(stats === null ? 0 : read(stats)) } })
  gauge('mlids_notifications_queued', 'SNS notifications waiting in memory or in flight', s => s.queued + s.in_flight)
  gauge('mlids_notifications_backlog_bytes', 'Bytes of notifications on disk (journal/spill) and held in memory', s => s.backlog_bytes)
  gauge('mlids_notifications_oldest_unpublished_seconds', 'Age of the oldest notification not yet published', s => s.oldest_unpublished_seconds)
  gauge('mlids_notifications_held', 'Notifications neither published nor on disk: predictions answer 503 while above 0', s => s.held)
  gauge('mlids_notifications_dead_letter_bytes', 'Size of the dead-letter file (capped at NOTIFY_DEAD_LETTER_MAX_BYTES)', s => s.dead_letter_bytes)
  gauge('mlids_notifications_damaged_records', 'Torn or corrupt journal records skipped when reading back, since start', s => s.damaged_records)
  gauge('mlids_notifications_unreadable_segments', 'Journal segments that cannot be read now (skipped, retried every minute)', s => s.unreadable_segments)
  new Gauge({ // eslint-disable-line no-new
    name: 'mlids_stream_subscribers',
    help: 'Server-Sent Events subscribers connected',
    registers: [registry],
    collect () { this.set(fastify.notifications.stats().stream.subscribers) },
  })
}

/** Per-feature drift from the training data (one series per model feature), read at scrape time. */
function driftMetrics (fastify: FastifyInstance, registry: Registry) {
  const drift = fastify.classifier.drift
  if (drift === undefined) return
  new Gauge({ // eslint-disable-line no-new
    name: 'mlids_feature_drift_psi',
    help: `Population stability index of each model feature over the last ${drift.windowRows} rows classified against the training data (above 0.25: shifted)`,
    labelNames: ['feature'],
    registers: [registry],
    collect () { for (const { feature, psi } of drift.summary().psi) this.set({ feature }, psi) },
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'mlids_drift_window_rows',
    help: 'Rows the drift figures are computed over (fewer than DRIFT_WINDOW_ROWS until the window fills)',
    registers: [registry],
    collect () { this.set(drift.summary().rows) },
  })
}

/** Operational requests by how the pacer took them: a flood of /health or /metrics shows here. */
function probeMetrics (fastify: FastifyInstance, registry: Registry) {
  outcomeCounter(registry, 'mlids_probe_requests_total',
    'Probe and scrape requests by how the pacer (PROBES_PER_SECOND) took them: immediate, waited, refused (queue full), dropped (client gone while waiting)',
    ['immediate', 'waited', 'refused', 'dropped'], () => fastify.probePacer.counts)
}

/**
 * A counter labelled by `outcome` whose values are totals kept elsewhere (the publisher's stats, the
 * pacer's counts), read at scrape time: prom-client counters only take increments, so each scrape adds
 * what changed since the last. `read` answers null while there is nothing to count.
 */
function outcomeCounter<K extends string> (registry: Registry, name: string, help: string, outcomes: readonly K[], read: () => Record<K, number> | null) {
  const seen = new Map<K, number>()
  new Counter({ // eslint-disable-line no-new
    name,
    help,
    labelNames: ['outcome'],
    registers: [registry],
    collect () {
      const totals = read()
      if (totals === null) return
      for (const outcome of outcomes) {
        this.inc({ outcome }, totals[outcome] - (seen.get(outcome) ?? 0))
        seen.set(outcome, totals[outcome])
      }
    },
  })
}

/**
 * Prometheus metrics: HTTP requests and latency by route and status, rows and predictions by class,
 * classifier latency and errors by backend, the notification pipeline, and Node's own (event-loop
 * delay, heap, GC). Each app has its own registry, so several apps in one process do not collide.
 */
export default fp(async function metrics (fastify) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 })
  httpMetrics(fastify, registry)
  classifierMetrics(fastify, registry)
  notificationMetrics(fastify, registry)
  driftMetrics(fastify, registry)
  probeMetrics(fastify, registry)
  fastify.decorate('metrics', registry)
}, { name: 'metrics', dependencies: ['classifier', 'classifications', 'notifications', 'probes'] })
