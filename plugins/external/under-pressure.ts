import fp from 'fastify-plugin'
import { isProbe } from './probes.js'
import underPressure from '@fastify/under-pressure'
import createError from '@fastify/error'
import { getHeapStatistics } from 'node:v8'

export const OverloadedError = createError<[string]>('OVERLOADED', '%s', 503)

/**
 * Load shedding: while the event loop lags or the heap is nearly full, API requests are answered 503
 * with Retry-After at once instead of queueing until every client times out. Health, readiness and
 * metrics keep answering (readiness says 503 too, so a balancer sends traffic elsewhere).
 */
export default fp(async function pressure (fastify) {
  const { PRESSURE_MAX_EVENT_LOOP_DELAY_MS, PRESSURE_MAX_HEAP_MB, PRESSURE_RETRY_AFTER_S } = fastify.config
  const heapLimit = getHeapStatistics().heap_size_limit
  await fastify.register(underPressure, {
    maxEventLoopDelay: PRESSURE_MAX_EVENT_LOOP_DELAY_MS,
    // Default: 90% of the heap V8 may use.
    maxHeapUsedBytes: PRESSURE_MAX_HEAP_MB > 0 ? PRESSURE_MAX_HEAP_MB * 1024 * 1024 : Math.round(heapLimit * 0.9),
    retryAfter: PRESSURE_RETRY_AFTER_S,
    pressureHandler: (request, reply, type) => {
      if (isProbe(request.url)) return
      reply.header('retry-after', PRESSURE_RETRY_AFTER_S)
      return Promise.reject(new OverloadedError(`the server is overloaded (${type}): retry in ${PRESSURE_RETRY_AFTER_S} s`))
    },
  })
}, { name: 'under-pressure', dependencies: ['env'] })
