import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Server } from 'node:http'
import type { Registry } from 'prom-client'
import { readiness } from './root.js'
import { ConfigError } from '../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The operational listener (METRICS_PORT: /metrics, /health, /ready), or null when /metrics is on PORT. */
    metricsServer: Server | null
  }
}

// Scrapes rendered afresh per second before later ones get the last rendering (at most a second old).
const FRESH_PER_SECOND = 10

/**
 * The exposition, rendered at most FRESH_PER_SECOND times a second: a scraper (one scrape every few
 * seconds) and a test always get a fresh one, a flood gets the last one, so rendering every metric of
 * the registry cannot become a lever on the event loop. Concurrent scrapes share one rendering.
 */
export function cachedExposition (registry: Registry, freshPerSecond = FRESH_PER_SECOND) {
  let last: { text: string, at: number } | undefined
  let rendering: Promise<string> | undefined
  let windowStart = 0
  let fresh = 0
  return async function exposition (): Promise<string> {
    const now = performance.now()
    if (now - windowStart >= 1000) {
      windowStart = now
      fresh = 0
    }
    if (rendering !== undefined) return await rendering
    if (fresh >= freshPerSecond && last !== undefined && now - last.at < 1000) return last.text
    fresh++
    rendering = registry.metrics().then(text => {
      last = { text, at: performance.now() }
      return text
    }).finally(() => { rendering = undefined })
    return await rendering
  }
}

const metricsSchema = {
  operationId: 'getMetrics',
  tags: ['health'],
  summary: 'Prometheus metrics',
  description: 'Prometheus text format. Open like /health: protect it at the network (a separate port or a path rule on the load balancer).',
  produces: ['text/plain'],
  response: { 200: Type.String({ description: 'Prometheus text exposition format 0.0.4' }) },
}

/**
 * GET /metrics: on the API's port, or, with METRICS_PORT set (the Prometheus convention), on a listener
 * of its own with the probes, so that the port clients reach has no operational endpoint to flood
 * but the probes, and the network can keep everyone but the scraper off the other.
 */
const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  const { METRICS_PORT, HOST } = fastify.config
  const exposition = cachedExposition(fastify.metrics)
  const contentType = fastify.metrics.contentType
  if (METRICS_PORT === undefined) {
    fastify.decorate('metricsServer', null)
    // A probe: never shed nor rate limited, so the scraper sees the overload it would otherwise miss.
    fastify.get('/metrics', { config: { probe: true }, schema: metricsSchema }, async function (_request, reply) {
      return reply.type(contentType).send(await exposition())
    })
    return
  }
  if (METRICS_PORT !== 0 && METRICS_PORT === fastify.config.PORT) {
    throw new ConfigError(`METRICS_PORT ${METRICS_PORT} is PORT too: give /metrics a port of its own (9464 by convention), or unset METRICS_PORT to serve it on PORT`)
  }
  const ops = operationalListener(fastify, async () => await exposition(), contentType)
  fastify.decorate('metricsServer', ops.server)
  // Listening before the app is ready, so a port in use stops the start-up like any other bad setting,
  // in one line; the port is logged, as the API's is (METRICS_PORT=0 picks one).
  fastify.addHook('onReady', async () => {
    try {
      await ops.listen({ port: METRICS_PORT, host: HOST })
    } catch (err) {
      throw new ConfigError(`METRICS_PORT ${METRICS_PORT}: ${(err as Error).message}`, { cause: err })
    }
    const address = ops.server.address()
    fastify.log.info({ port: typeof address === 'object' && address !== null ? address.port : METRICS_PORT }, 'metrics and probes listening')
  })
  fastify.addHook('onClose', async () => { await ops.close() })
}

/** A bare Fastify server for the scraper and the probes: no body parsing, no guards, nothing else. */
function operationalListener (app: FastifyInstance, exposition: () => Promise<string>, contentType: string) {
  const ops = Fastify({ logger: false, return503OnClosing: false })
  // One budget with the API's probe routes: a flood of this port paces like a flood of those.
  ops.addHook('onRequest', app.paceProbe)
  ops.get('/metrics', async (_request, reply) => reply.type(contentType).send(await exposition()))
  ops.get('/health', async () => ({ status: 'ok' as const }))
  ops.get('/ready', readiness(app))
  return ops
}

// Not encapsulated: `metricsServer` is the app's, for the server's log line and the tests.
export default fp(routes, { name: 'metrics-routes', dependencies: ['metrics', 'probes'] })
