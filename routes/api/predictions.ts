import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import AjvCompiler from '@fastify/ajv-compiler'
import { Type } from '@sinclair/typebox'
import type { FastifySchemaCompiler } from 'fastify'
import { parseJsonBody } from '../../classifier/body.js'
import { flowBody, flowInput, framesOf } from '../../plugins/app/flow-input.js'
import { AJV_OPTIONS } from '../../schemas/ajv.js'
import { apiSecurity, errorResponses } from '../../schemas/common.js'
import { Predictions, Scores, type Prediction } from '../../schemas/predictions.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * JSON bodies of this many bytes and up are kept as bytes and parsed, checked and classified in a
     * worker thread (WORKER_MIN_BYTES, on a route that has a pool).
     */
    pooledFromBytes?: number
  }
}

const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  const { BODY_LIMIT, MAX_ROWS, WORKER_MIN_BYTES } = fastify.config
  const pool = fastify.workerPool

  // Large JSON bodies on a pooled route stay bytes, for a worker thread to parse, check and classify
  // (classifier/body.ts: the same steps as the flow-input hooks run here); every other JSON body is
  // parsed here, as Fastify's own parser would.
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    if (body.length >= (request.routeOptions.config.pooledFromBytes ?? Infinity)) return done(null, body)
    try {
      done(null, parseJsonBody(body, { depthChecked: true }))
    } catch (err) {
      done(err as Error, undefined)
    }
  })
  // Fastify's validator compiler (the same Ajv compiler, options and shared schemas), except that a
  // body kept as bytes passes: the worker validates it with the same schema.
  const compile = AjvCompiler()(fastify.getSchemas() as Parameters<ReturnType<typeof AjvCompiler>>[0], AJV_OPTIONS)
  const passBytes: FastifySchemaCompiler<unknown> = route => {
    const validate = compile(route as Parameters<typeof compile>[0]) as ((data: unknown) => boolean) & { errors?: unknown }
    if (route.httpPart !== 'body') return validate
    const validateBody = (data: unknown) => Buffer.isBuffer(data) || validate(data)
    return Object.defineProperty(validateBody, 'errors', { get: () => validate.errors })
  }
  const limits = `Rows are numbered from 0 in error messages (CSV: by line of the file). At most ${MAX_ROWS} rows and ${BODY_LIMIT} bytes per request.`

  fastify.post('/predictions', {
    config: { classifies: true, ...(pool !== null ? { pooledFromBytes: WORKER_MIN_BYTES } : {}) },
    ...flowInput(fastify.config),
    validatorCompiler: passBytes,
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
    if (Buffer.isBuffer(request.body)) {
      const body = request.body
      // Who receives which notifications is known here, not in the worker: it builds them as told.
      const notify = { kind: fastify.notifications.kind(), grouping: fastify.notifications.grouping, model: fastify.classifier.describe().name, requestId: request.id }
      return await request.classifyPooled(async signal => {
        const result = await pool!.run(body, { path: request.url.split('?')[0], notify }, signal)
        return { predictions: Array.from(result.predictions) as Prediction[], notifications: result.notifications }
      })
    }
    const predictions = await request.classify(framesOf(request), (frame, signal) => fastify.classifier.predict(frame, { signal }))
    return predictions
  })

  fastify.post('/scores', {
    config: { classifies: true },
    ...flowInput(fastify.config),
    schema: {
      operationId: 'score',
      security: apiSecurity,
      tags: ['predictions'],
      summary: 'Attack probabilities and predictions',
      description: 'The same inputs as `POST /api/predictions`; answers each row\'s attack probability and its prediction at the ' +
        'threshold in force (`ATTACK_THRESHOLD`, else the model\'s). On SageMaker this needs an endpoint that returns probabilities: ' +
        `one that returns labels answers 501. ${limits}`,
      body: flowBody(),
      response: {
        200: Type.Ref(Scores, { description: 'Per row, in input order: the attack probability and the prediction' }),
        ...errorResponses(400, 401, 408, 413, 415, 429, 501, 502, 503, 504),
      },
    },
  }, async function (request) {
    const { scores, predictions } = await request.classify(framesOf(request), (frame, signal) => fastify.classifier.score(frame, { signal }))
    return { model: fastify.classifier.describe().name, threshold: fastify.classifier.threshold, scores, predictions }
  })
}

export default routes
