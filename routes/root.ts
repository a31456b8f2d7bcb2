import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { Health } from '../schemas/model.js'

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

  const readiness = {
    schema: {
      tags: ['health'],
      response: {
        200: Type.Ref(Health, { description: 'Ready to classify' }),
        503: Type.Ref(Health, { description: 'Not ready: the reason says why' }),
      },
    },
  }
  async function ready (_request: unknown, reply: import('fastify').FastifyReply) {
    const { ready, reason } = fastify.isUnderPressure()
      ? { ready: false, reason: 'overloaded: shedding load' }
      : fastify.classifier.readiness()
    const backend = fastify.classifier.backend
    if (ready) return { status: 'ok' as const, backend }
    return reply.code(503).send({ status: 'unavailable' as const, backend, reason })
  }

  fastify.get('/ready', { config: { probe: true }, schema: { ...readiness.schema, operationId: 'getReadiness', summary: 'Readiness: the classifier can serve predictions' } }, ready)
  fastify.get('/ping', { config: { probe: true }, schema: { ...readiness.schema, operationId: 'ping', summary: 'Readiness, at the path SageMaker containers answer' } }, ready)
}

export default routes
