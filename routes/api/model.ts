import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { apiSecurity } from '../../schemas/common.js'
import { ModelInfo } from '../../schemas/model.js'

const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  fastify.get('/model', {
    schema: {
      security: apiSecurity,
      tags: ['model'],
      summary: 'Describe the model serving predictions',
      description: 'Backend, name, version, features, threshold, training provenance and metrics ' +
        '(for SageMaker: endpoint name and region).',
      response: { 200: Type.Ref(ModelInfo, { description: 'The model serving predictions' }) },
    },
  }, async function () {
    return fastify.classifier.describe()
  })
}

export default routes
