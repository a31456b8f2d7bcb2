import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { flowBody, flowInput, framesOf } from '../../input/flow-input.js'
import { pooledRoute } from '../../plugins/app/worker-pool.js'
import { apiSecurity, errorResponses } from '../../schemas/common.js'
import { Predictions, Scores } from '../../schemas/predictions.js'

const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  const { BODY_LIMIT, MAX_ROWS } = fastify.config
  const limits = `Rows are numbered from 0 in error messages (CSV: by line of the file). At most ${MAX_ROWS} rows and ${BODY_LIMIT} bytes per request.`

  fastify.post('/predictions', {
    // Large JSON bodies stay bytes, for a worker thread to parse, check and classify.
    ...pooledRoute(fastify),
    ...flowInput(fastify.config),
    schema: {
      operationId: 'predict',
      security: apiSecurity,
      tags: ['predictions'],
      summary: 'Classify flows',
      description: 'Takes CICFlowMeter flows as a pandas DataFrame in JSON split orientation ' +
        '(`DataFrame.to_json(orient="split")`) or as CICFlowMeter CSV, and answers one prediction per row, in order: ' +
        `0 = benign, 1 = attack. ${limits} MLflow scoring bodies go to \`POST /invocations\`.`,
      body: flowBody(),
      response: {
        200: Type.Ref(Predictions, { description: 'One prediction per row, in input order: 0 = benign, 1 = attack' }),
        ...errorResponses(400, 401, 408, 413, 415, 429, 502, 503, 504),
      },
    },
  }, async function (request) {
    if (Buffer.isBuffer(request.body)) return await request.classifyPooled(request.body)
    return await request.classify(framesOf(request), (frame, signal) => fastify.classifier.predict(frame, { signal }))
  })

  fastify.post('/scores', {
    // Large JSON bodies are parsed, checked and scored in a worker thread, as on /predictions.
    ...pooledRoute(fastify),
    ...flowInput(fastify.config),
    schema: {
      operationId: 'score',
      security: apiSecurity,
      tags: ['predictions'],
      summary: 'Attack probabilities and predictions',
      description: 'The same inputs as `POST /api/predictions`; answers each row\'s attack probability and its prediction at the ' +
        'threshold in force (`ATTACK_THRESHOLD`, else the model\'s), and, when the model ships an unfamiliar-flow detector, each row\'s ' +
        'unfamiliarity score and whether it reaches `NOVELTY_THRESHOLD` (else the detector\'s threshold). On SageMaker this needs an endpoint that returns probabilities: ' +
        `one that returns labels answers 501. ${limits}`,
      body: flowBody(),
      response: {
        200: Type.Ref(Scores, { description: 'Per row, in input order: the attack probability and the prediction' }),
        ...errorResponses(400, 401, 408, 413, 415, 429, 501, 502, 503, 504),
      },
    },
  }, async function (request) {
    const { scores, predictions, novelty } = Buffer.isBuffer(request.body)
      ? await request.scorePooled(request.body)
      : await request.classify(framesOf(request), (frame, signal) => fastify.classifier.score(frame, { signal }))
    const { name } = fastify.classifier.describe()
    const { threshold, noveltyThreshold } = fastify.classifier
    if (novelty === undefined || noveltyThreshold === undefined) return { model: name, threshold, scores, predictions }
    return { model: name, threshold, scores, predictions, novelty: { threshold: noveltyThreshold, scores: novelty, unfamiliar: novelty.map(s => s >= noveltyThreshold) } }
  })
}

export default routes
