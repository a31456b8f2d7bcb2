import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'

const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  // A probe: never shed nor rate limited, so the scraper sees the overload it would otherwise miss.
  fastify.get('/metrics', {
    config: { probe: true },
    schema: {
      operationId: 'getMetrics',
      tags: ['health'],
      summary: 'Prometheus metrics',
      description: 'Prometheus text format. Open like /health: protect it at the network (a separate port or a path rule on the load balancer).',
      produces: ['text/plain'],
      response: { 200: Type.String({ description: 'Prometheus text exposition format 0.0.4' }) },
    },
  }, async function (_request, reply) {
    return reply.type(fastify.metrics.contentType).send(await fastify.metrics.metrics())
  })
}

export default routes
