import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { checkFrame } from '../../classifier/frame.js'
import { ExplanationsUnavailableError } from '../../classifier/errors.js'
import { apiSecurity, errorResponses } from '../../schemas/common.js'
import { ExplanationQuery, Explanations } from '../../schemas/explanations.js'
import { PandasSplitFrame, PREDICTION_MEDIA_TYPES } from '../../schemas/predictions.js'
import { isSupportedMediaType, TooManyRowsError, UnsupportedMediaTypeError } from './predictions.js'

const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  const { BODY_LIMIT, MAX_ROWS, EXPLAIN_MAX_ROWS } = fastify.config
  // Explaining costs far more than predicting: a limit of its own, never above the predictions' one.
  const maxRows = Math.min(MAX_ROWS, EXPLAIN_MAX_ROWS)

  fastify.post('/explanations', {
    bodyLimit: BODY_LIMIT,
    schema: {
      security: apiSecurity,
      tags: ['explanations'],
      summary: 'Explain the predictions of flows: per-feature contributions (TreeSHAP)',
      description: 'Takes the same body as `POST /api/predictions` and answers, per row and in order, the prediction, ' +
        'the attack probability (`score`), the margin (log-odds), the bias (expected margin) and each model feature\'s ' +
        'SHAP contribution to the margin, largest absolute value first; contributions plus bias equal the margin. ' +
        'Exact path-dependent TreeSHAP, equal to XGBoost\'s `predict(..., pred_contribs=True)`. `top=N` keeps the N ' +
        `largest. At most ${maxRows} rows per request. Embedded model only: 501 with SageMaker.`,
      consumes: [...PREDICTION_MEDIA_TYPES],
      querystring: ExplanationQuery,
      body: Type.Ref(PandasSplitFrame),
      response: {
        200: Type.Ref(Explanations, { description: 'One explanation per row, in input order' }),
        ...errorResponses(400, 401, 413, 415, 429, 501, 503),
      },
    },
    // Before the body is read: no backend to explain with, or not a JSON split frame.
    onRequest: async (request) => {
      if (fastify.classifier.explain === undefined) {
        throw new ExplanationsUnavailableError(`explanations need the embedded model: this service classifies with the ${fastify.classifier.backend} backend, which gives no feature contributions`)
      }
      if (!isSupportedMediaType(request.headers['content-type'])) throw new UnsupportedMediaTypeError('')
    },
    preValidation: async (request) => {
      const rows = (request.body as { data?: unknown })?.data
      if (Array.isArray(rows) && rows.length > maxRows) throw new TooManyRowsError(rows.length, maxRows)
    },
  }, async function (request) {
    checkFrame(request.body)
    const top = request.query.top === undefined ? undefined : Number(request.query.top)
    // Checked in onRequest; the classifier is chosen once, at start-up.
    return await fastify.classifier.explain!(request.body, { top })
  })
}

export default routes
