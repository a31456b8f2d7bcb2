import fp from 'fastify-plugin'
import { readFileSync } from 'node:fs'
import { totalmem } from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { getHeapStatistics } from 'node:v8'
import { OverloadedError } from '../../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** True while the last sample was over a threshold: API requests are shed, /ready says 503. */
    isUnderPressure(): boolean
  }
  interface FastifyContextConfig {
    /** Probes and scrapers (/health, /ready, /ping, /metrics): never shed, never rate limited. */
    probe?: boolean
  }
}

const MB = 1024 * 1024
const SAMPLE_INTERVAL_MS = 1000

/** The memory this process may use: the container's limit (cgroup), else the machine's. */
export function memoryLimitBytes (): number {
  const constrained = process.constrainedMemory?.() ?? 0
  return constrained > 0 && constrained < totalmem() ? constrained : totalmem()
}

/** The soft limit on open files (RLIMIT_NOFILE) from /proc, or undefined off Linux. */
export function fileDescriptorLimit (): number | undefined {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return line ? Number(line[1]) : undefined
  } catch {
    return undefined
  }
}

/**
 * Connections the server accepts at once: MAX_CONNECTIONS, or the file-descriptor limit less a
 * reserve (a tenth, at least 64) for SageMaker and SNS sockets, spill files and logs, at most 10,000.
 * Past it Node closes new connections at once instead of running out of descriptors.
 */
export function connectionLimit (configured: number, fdLimit = fileDescriptorLimit()): number {
  if (configured > 0) return configured
  if (fdLimit === undefined) return 10_000
  return Math.max(16, Math.min(10_000, fdLimit - Math.max(64, Math.ceil(fdLimit / 10))))
}

/**
 * Load shedding: while the event loop lags, or the heap or the resident memory (which holds the
 * bodies and buffers outside the heap) is over its threshold, API requests are answered 503 with
 * Retry-After at once instead of queueing until every client times out. Probes keep answering
 * (readiness says 503 too, so a balancer sends traffic elsewhere).
 *
 * The sampler never throws: reading the resident size opens /proc/self/stat, which fails with EMFILE
 * when descriptors run out; the last value is kept and the failure logged once.
 */
export default fp(async function pressure (fastify) {
  const { PRESSURE_MAX_EVENT_LOOP_DELAY_MS, PRESSURE_MAX_HEAP_MB, PRESSURE_MAX_RSS_MB, PRESSURE_RETRY_AFTER_S, MAX_CONNECTIONS } = fastify.config
  const maxHeap = PRESSURE_MAX_HEAP_MB > 0 ? PRESSURE_MAX_HEAP_MB * MB : Math.round(getHeapStatistics().heap_size_limit * 0.9)
  const maxRss = PRESSURE_MAX_RSS_MB > 0 ? PRESSURE_MAX_RSS_MB * MB : Math.round(memoryLimitBytes() * 0.85)
  fastify.server.maxConnections = connectionLimit(MAX_CONNECTIONS)

  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  let rss = 0
  let sampleFailed = false
  let reason: string | undefined

  function sample () {
    try {
      rss = process.memoryUsage.rss()
      sampleFailed = false
    } catch (err) {
      if (!sampleFailed) fastify.log.warn({ code: (err as NodeJS.ErrnoException).code }, 'memory sample failed: keeping the last value')
      sampleFailed = true
    }
    const lag = Number.isNaN(delay.mean) ? 0 : Math.max(0, delay.mean / 1e6 - 10)
    delay.reset()
    const heap = getHeapStatistics().used_heap_size
    reason = PRESSURE_MAX_EVENT_LOOP_DELAY_MS > 0 && lag > PRESSURE_MAX_EVENT_LOOP_DELAY_MS
      ? `event loop delay ${Math.round(lag)} ms`
      : heap > maxHeap
        ? `heap ${Math.round(heap / MB)} MB`
        : rss > maxRss ? `resident memory ${Math.round(rss / MB)} MB` : undefined
  }
  sample()
  const timer = setInterval(sample, SAMPLE_INTERVAL_MS).unref()
  fastify.addHook('onClose', async () => {
    clearInterval(timer)
    delay.disable()
  })

  fastify.decorate('isUnderPressure', () => reason !== undefined)
  fastify.addHook('onRequest', (request, _reply, done) => {
    if (reason === undefined || request.routeOptions.config.probe === true) return done()
    done(new OverloadedError(`the server is overloaded (${reason}): retry in ${PRESSURE_RETRY_AFTER_S} s`))
  })
}, { name: 'pressure', dependencies: ['env'] })
