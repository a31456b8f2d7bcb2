import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import auth from '../plugins/app/auth.js'
import { flowBody, flowInput, framesOf } from '../input/flow-input.js'
import { pooledRoute } from '../plugins/app/worker-pool.js'
import { packageInfo } from '../project.js'
import { apiSecurity, errorResponses } from '../schemas/common.js'
import { MlflowPredictions, VersionInfo } from '../schemas/mlflow.js'
import { readiness, readinessSchema } from './root.js'

/**
 * MLflow 2.x's scoring protocol and the SageMaker container contract, at the root as MLflow and
 * SageMaker containers serve them: MLflow clients can point at this service unchanged, and the image
 * can run as a SageMaker bring-your-own-container endpoint (`serve`, port 8080).
 *
 * /invocations classifies and announces like /api/predictions, so it sits behind the same guard (API
 * key, rate limit) in a scope of its own; /ping and /version stay open. SageMaker calls /invocations
 * without keys (IAM authenticates InvokeEndpoint callers before SageMaker forwards them): leave
 * API_KEYS unset in a SageMaker deployment.
 */
const mlflow = { json: 'mlflow' } as const

/** POST /invocations in a scope of its own, behind the guard every route that classifies has. */
const scoring: FastifyPluginAsyncTypebox = async function (fastify) {
  await fastify.register(auth)

  fastify.post('/invocations', {
    // Large JSON bodies are parsed (as MLflow's), checked and classified in a worker thread.
    ...pooledRoute(fastify),
    ...flowInput(fastify.config, mlflow),
    schema: {
      operationId: 'invocations',
      security: apiSecurity,
      tags: ['mlflow'],
      summary: 'MLflow 2.x scoring protocol',
      description: 'What `mlflow models serve` and SageMaker MLflow containers answer: `{"dataframe_split": {...}}`, ' +
        '`{"dataframe_records": [...]}`, `{"instances": ...}` or `{"inputs": ...}` as application/json (no `format` parameter), ' +
        'or text/csv; answers `{"predictions": [0, 1, ...]}`. The same model, threshold and notifications as `POST /api/predictions`.',
      body: flowBody(mlflow),
      response: {
        200: Type.Ref(MlflowPredictions, { description: 'One prediction per row, in input order' }),
        ...errorResponses(400, 401, 408, 413, 415, 429, 502, 503, 504),
      },
    },
  }, async function (request) {
    if (Buffer.isBuffer(request.body)) return { predictions: await request.classifyPooled(request.body, mlflow) }
    const predictions = await request.classify(framesOf(request), (frame, signal) => fastify.classifier.predict(frame, { signal }))
    return { predictions }
  })
}

const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  await fastify.register(scoring)

  // SageMaker's health check: 200 within 2 s when the container can serve.
  fastify.get('/ping', { config: { probe: true }, schema: { ...readinessSchema, operationId: 'ping', tags: ['mlflow', 'health'], summary: 'Readiness, as SageMaker and MLflow containers answer it' } }, readiness(fastify))

  fastify.get('/version', {
    schema: {
      operationId: 'getVersion',
      tags: ['mlflow'],
      summary: 'Service and model versions',
      response: { 200: Type.Ref(VersionInfo, { description: 'What is serving' }) },
    },
  }, async function () {
    const { name, version, backend } = fastify.classifier.describe()
    return { service: `${packageInfo.name} ${packageInfo.version}`, model: name, ...(version !== undefined ? { model_version: version } : {}), backend }
  })
}

export default routes
