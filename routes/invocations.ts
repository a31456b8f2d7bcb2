import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { flowBody, flowInput, framesOf } from '../plugins/app/flow-input.js'
import { packageInfo } from '../project.js'
import { errorResponses } from '../schemas/common.js'
import { MlflowPredictions, VersionInfo } from '../schemas/mlflow.js'
import { readiness, readinessSchema } from './root.js'

/**
 * MLflow 2.x's scoring protocol and the SageMaker container contract, at the root as MLflow and
 * SageMaker containers serve them: MLflow clients can point at this service unchanged, and the image
 * can run as a SageMaker bring-your-own-container endpoint (`serve`, port 8080).
 *
 * Not under API_KEYS: SageMaker calls /ping and /invocations without keys (IAM authenticates
 * InvokeEndpoint callers before SageMaker forwards them). Outside SageMaker, keep /invocations off the
 * public load balancer as /metrics is (forward only /api/* and /docs*).
 */
const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  const mlflow = { json: 'mlflow' } as const

  fastify.post('/invocations', {
    config: { announces: true },
    ...flowInput(fastify.config, mlflow),
    schema: {
      tags: ['mlflow'],
      summary: 'MLflow 2.x scoring protocol',
      description: 'What `mlflow models serve` and SageMaker MLflow containers answer: `{"dataframe_split": {...}}`, ' +
        '`{"dataframe_records": [...]}`, `{"instances": ...}` or `{"inputs": ...}` as application/json (no `format` parameter), ' +
        'or text/csv; answers `{"predictions": [0, 1, ...]}`. The same model, threshold and notifications as `POST /api/predictions`.',
      body: flowBody(mlflow),
      response: {
        200: Type.Ref(MlflowPredictions, { description: 'One prediction per row, in input order' }),
        ...errorResponses(400, 413, 415, 429, 502, 503, 504),
      },
    },
  }, async function (request) {
    const frame = framesOf(request)
    const started = performance.now()
    const predictions = await fastify.classifier.predict(frame)
    request.classified = { frame, predictions, seconds: (performance.now() - started) / 1000 }
    return { predictions }
  })

  // SageMaker's health check: 200 within 2 s when the container can serve.
  fastify.get('/ping', { schema: { ...readinessSchema, tags: ['mlflow', 'health'], summary: 'Readiness, as SageMaker and MLflow containers answer it' } }, readiness(fastify))

  fastify.get('/version', {
    schema: {
      tags: ['mlflow'],
      summary: 'Service and model versions',
      response: { 200: Type.Ref(VersionInfo, { description: 'What is serving' }) },
    },
  }, async function () {
    const { name, version, backend } = fastify.classifier.describe()
    return { service: `${packageInfo.name} ${packageInfo.version}`, model: name, ...(version !== undefined ? { modelVersion: version } : {}), backend }
  })
}

export default routes
