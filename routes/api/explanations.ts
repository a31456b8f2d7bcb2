import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ExplanationsUnavailableError } from '../../errors.js'
import { flowBody, flowInput, framesOf } from '../../input/flow-input.js'
import { apiSecurity, errorResponses } from '../../schemas/common.js'
import { ExplanationQuery, Explanations } from '../../schemas/explanations.js'

const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  const { BODY_LIMIT, MAX_ROWS, EXPLAIN_MAX_ROWS, EXPLAIN_BODY_LIMIT } = fastify.config
  // Explaining costs far more than predicting: a limit of its own, never above the predictions' one.
  const maxRows = Math.min(MAX_ROWS, EXPLAIN_MAX_ROWS)
  // Refused early rather than pooled: at most EXPLAIN_MAX_ROWS rows are explained, and they fit in
  // EXPLAIN_BODY_LIMIT (2 MiB), whose JSON.parse and validation take ~100 ms at worst (bench/README.md).
  // A larger body could only be a 413 for its rows after a parse of up to BODY_LIMIT on the event loop,
  // and a worker would spend a thread and a copy to give the same 413; here it is answered unread.
  const bodyLimit = Math.min(BODY_LIMIT, EXPLAIN_BODY_LIMIT)
  const input = flowInput({ BODY_LIMIT: bodyLimit, MAX_ROWS: maxRows })

  fastify.post('/explanations', {
    ...input,
    // A query string is text; `top` is an integer in the schema (so generated clients type it as one),
    // so its digits are read as a number before validation, and anything else is refused as it is.
    preValidation: [input.preValidation, async (request) => {
      const query = request.query as { top?: unknown }
      if (typeof query.top === 'string' && /^\d{1,6}$/.test(query.top)) query.top = Number(query.top)
    }],
    // Before the body is read: with no backend to explain with, nothing else matters.
    onRequest: [async () => {
      if (fastify.classifier.explain === undefined) {
        throw new ExplanationsUnavailableError(`explanations need the embedded model: this service classifies with the ${fastify.classifier.backend} backend, which gives no feature contributions`)
      }
    }, input.onRequest],
    schema: {
      operationId: 'explain',
      security: apiSecurity,
      tags: ['explanations'],
      summary: 'Explain the predictions of flows: per-feature contributions (TreeSHAP)',
      description: 'Takes the same bodies as `POST /api/predictions` (pandas split JSON or CICFlowMeter CSV) and answers, per row and in order, the prediction, ' +
        'the attack probability (`score`), the margin (log-odds), the bias (expected margin) and each model feature\'s ' +
        'SHAP contribution to the margin, largest absolute value first; contributions plus bias equal the margin. ' +
        'Exact path-dependent TreeSHAP, equal to XGBoost\'s `predict(..., pred_contribs=True)`. `top=N` keeps the N ' +
        'largest. With the model\'s unfamiliar-flow detector, each row also carries its unfamiliarity score (`novelty`) and whether it ' +
        'reaches `NOVELTY_THRESHOLD`, else the detector\'s threshold (`unfamiliar`). ' +
        `At most ${maxRows} rows and ${bodyLimit} bytes per request. Embedded model only: 501 with SageMaker.`,
      querystring: ExplanationQuery,
      body: flowBody(),
      response: {
        200: Type.Ref(Explanations, { description: 'One explanation per row, in input order' }),
        ...errorResponses(400, 401, 408, 413, 415, 429, 501, 503),
      },
    },
  }, async function (request) {
    // Checked in onRequest; the classifier is chosen once, at start-up.
    // Held: the body's bytes stay reserved while it runs, and it stops between slices if the client goes.
    return await request.hold(signal => fastify.classifier.explain!(framesOf(request), { top: request.query.top, signal }))
  })
}

export default routes
