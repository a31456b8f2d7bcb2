import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { apiSecurity, errorResponses } from '../../schemas/common.js'
import { DriftSummary } from '../../schemas/novelty.js'

const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  fastify.get('/drift', {
    schema: {
      operationId: 'getDrift',
      security: apiSecurity,
      tags: ['model'],
      summary: 'How far recent flows have drifted from the training data, per feature',
      description: 'Per model feature, the population stability index (PSI) of the last `DRIFT_WINDOW_ROWS` rows classified by ' +
        'this process against the training distribution (deciles and a missing bin, from the drift reference in the model\'s ' +
        '`novelty.json`), largest first. The same figures are the `mlids_feature_drift_psi` metric. Rows classified in worker ' +
        'threads count too; explained rows do not.',
      response: {
        200: Type.Ref(DriftSummary, { description: 'The drift of each feature, or why it is not measured' }),
        ...errorResponses(401, 429, 503),
      },
    },
  }, async function () {
    const { drift } = fastify.classifier
    if (drift === undefined) {
      return { available: false, reason: fastify.classifier.backend === 'sagemaker' ? 'drift is measured on the embedded model only' : 'no drift reference beside the model, or DRIFT_WINDOW_ROWS=0' }
    }
    const { rows, psi } = drift.summary()
    return { available: true, window_rows: drift.windowRows, rows, reference_rows: drift.referenceRows, features: psi.sort((a, b) => b.psi - a.psi) }
  })
}

export default routes
