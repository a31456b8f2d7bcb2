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
      description: 'Backend, name, version, features, threshold and training provenance (for SageMaker: endpoint ' +
        'name and region). For the embedded model, its model card\'s evaluations, each with what it measures and ' +
        'per attack family: cross-validation grouped by capture day (the estimate for days the model has not ' +
        'seen), an operating table of cross-validated recall and false-positive rate by threshold, the holdout ' +
        '(whose capture days the model was trained on) and the same recipe trained without the holdout\'s days.',
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
