import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { apiSecurity, errorResponses } from '../../schemas/common.js'
import { ModelInfo } from '../../schemas/model.js'

const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  fastify.get('/model', {
    schema: {
      operationId: 'getModel',
      security: apiSecurity,
      tags: ['model'],
      summary: 'Describe the model serving predictions',
      description: 'Backend, name, version, features, threshold, training provenance and metrics ' +
        '(for SageMaker: endpoint name and region).',
      response: {
        200: Type.Ref(ModelInfo, { description: 'The model serving predictions' }),
        ...errorResponses(401, 429, 503),
      },
    },
  }, async function () {
    return fastify.classifier.describe()
  })
}

export default routes
