import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { Health } from '../schemas/health.js'
import { ErrorResponse } from '../schemas/common.js'

const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  fastify.get('/', {
    schema: {
      operationId: 'getServiceName',
      tags: ['health'],
      summary: 'Service name',
      produces: ['text/plain'],
      response: { 200: Type.String({ description: 'The service name', examples: ['ML-IDS API'] }) },
    },
  }, async function (_request, reply) {
    return reply.type('text/plain; charset=utf-8').send('ML-IDS API')
  })

  fastify.get('/health', {
    config: { probe: true },
    schema: {
      operationId: 'getHealth',
      tags: ['health'],
      summary: 'Liveness: the process answers',
      response: { 200: Type.Ref(Health, { description: 'The process is up' }) },
    },
  }, async function () {
    return { status: 'ok' as const }
  })

  fastify.get('/ready', { config: { probe: true }, schema: { ...readinessSchema, operationId: 'getReadiness', summary: 'Readiness: the classifier can serve predictions' } }, readiness(fastify))
}

export const readinessSchema = {
  tags: ['health'],
  response: {
    200: Type.Ref(Health, { description: 'Ready to classify' }),
    // Not ready (Health, with the reason), or the probe refused by the pacer (PROBES_BUSY, an ErrorResponse).
    503: Type.Union([Type.Ref(Health), Type.Ref(ErrorResponse)], { description: 'Not ready: the reason says why; or PROBES_BUSY: too many probe requests wait (retry after Retry-After)' }),
  },
}

/**
 * 200 when the classifier can serve, the process is not shedding load and every notification has
 * somewhere to go, else 503 with the reason.
 */
export function readiness (fastify: FastifyInstance) {
  return async function ready (_request: unknown, reply: FastifyReply) {
    const notifications = fastify.notifications.readiness()
    const { ready, reason } = fastify.isUnderPressure()
      ? { ready: false, reason: 'overloaded: shedding load' }
      : !notifications.ready ? notifications : fastify.classifier.readiness()
    const backend = fastify.classifier.backend
    if (ready) return { status: 'ok' as const, backend }
    return reply.code(503).send({ status: 'unavailable' as const, backend, reason })
  }
}

export default routes
