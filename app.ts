import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import env, { type EnvOptions } from './plugins/external/env.js'
import openapi from './plugins/external/swagger.js'
import security from './plugins/external/security.js'
import rateLimit from './plugins/external/rate-limit.js'
import errors from './plugins/app/errors.js'
import shutdown from './plugins/app/shutdown.js'
import requestLog from './plugins/app/request-log.js'
import pressure from './plugins/app/pressure.js'
import probes from './plugins/app/probes.js'
import bodies from './plugins/app/bodies.js'
import classifier from './plugins/app/classifier.js'
import flowInput from './input/flow-input.js'
import workerPool from './plugins/app/worker-pool.js'
import classifications from './plugins/app/classifications.js'
import notifications from './plugins/app/notifications.js'
import metrics from './plugins/app/metrics.js'
import rootRoutes from './routes/root.js'
import metricsRoutes from './routes/metrics.js'
import apiRoutes from './routes/api/index.js'
import dashboardRoutes from './routes/dashboard.js'
import invocationRoutes from './routes/invocations.js'
import { AJV_OPTIONS } from './schemas/ajv.js'
import { sharedSerializers, sharedValidators } from './schemas/compilers.js'
import { ErrorResponse } from './schemas/common.js'
import { Evaluation, FamilyRate, ModelInfo, OperatingPoint, Preprocessing } from './schemas/model.js'
import { DriftSummary, NoveltyCard, NoveltyEvaluation, NoveltyInfo } from './schemas/novelty.js'
import { Health } from './schemas/health.js'
import { MlflowPredictions, MlflowRequest, VersionInfo } from './schemas/mlflow.js'
import { NotificationStats } from './schemas/notifications.js'
import { PandasSplitFrame, Predictions, Scores } from './schemas/predictions.js'
import { Explanations } from './schemas/explanations.js'
import { parseTrustProxy } from './schemas/config.js'

/** Fastify's own options, shared by the server and the tests so both build the same app. */
export const serverOptions = {
  // Types are checked, never coerced (shared with the worker threads, which compile the same schema).
  ajv: AJV_OPTIONS,
  // The caller's x-request-id when it is a sane token (it lands in logs and notifications), else a UUID.
  requestIdHeader: false,
  genReqId: (req: IncomingMessage) => {
    const given = req.headers['x-request-id']
    return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID()
  },
  return503OnClosing: true,
  // Response serializers compiled once per distinct schema, not once per route and status; validators
  // from one Ajv per set of shared schemas in the process (Fastify's default makes one per app).
  schemaController: { compilersFactory: { buildSerializer: sharedSerializers(), buildValidator: sharedValidators } },
  // plugins/app/request-log.ts writes one line per request instead of two.
  logController: new LogController({ disableRequestLogging: true }),
} satisfies FastifyServerOptions

export type AppOptions = EnvOptions

/**
 * The whole service as a plugin: load order is the architecture. Not encapsulated, so the server
 * entry point sees the configuration and the decorators too.
 */
async function app (fastify: FastifyInstance, opts: AppOptions) {
  // Ecosystem first: configuration, then the OpenAPI generator, which must see every route.
  await fastify.register(env, opts)
  // First of all hooks, so that every answer carries its request id, refusals included.
  // Callback-style hooks here and in the app's plugins: an async hook costs each request a promise and a
  // microtask, and these run for every request.
  fastify.addHook('onRequest', (request, reply, done) => { reply.header('x-request-id', request.id); done() })
  await fastify.register(openapi)
  await fastify.register(security)
  await fastify.register(rateLimit)
  for (const schema of [ErrorResponse, PandasSplitFrame, Predictions, Scores, Explanations, Preprocessing, FamilyRate, Evaluation, OperatingPoint, NoveltyEvaluation, NoveltyCard, NoveltyInfo, DriftSummary, ModelInfo, Health,
    NotificationStats, MlflowRequest, MlflowPredictions, VersionInfo]) {
    fastify.addSchema(schema)
  }
  // The app's own plugins: decorators the routes use.
  await fastify.register(errors)
  await fastify.register(shutdown)
  await fastify.register(requestLog)
  await fastify.register(pressure)
  await fastify.register(probes)
  await fastify.register(bodies)
  await fastify.register(classifier)
  await fastify.register(flowInput)
  await fastify.register(classifications)
  await fastify.register(notifications)
  // The worker path: the app's JSON parser, the pool, request.classifyPooled (notifications planned here).
  await fastify.register(workerPool)
  await fastify.register(metrics)
  // Routes.
  await fastify.register(rootRoutes)
  await fastify.register(metricsRoutes)
  await fastify.register(dashboardRoutes)
  await fastify.register(invocationRoutes)
  // Every /api route, behind the API key and the rate limit: new ones go in routes/api/index.ts.
  await fastify.register(apiRoutes, { prefix: '/api' })
}

const appPlugin = fp(app, { name: 'ml-ids-api' })
export default appPlugin

/**
 * The server, the tests and the scripts all build the service here, with the same options; only the
 * logger and the server's socket timeouts are theirs to choose. TRUST_PROXY is read here, from the
 * same environment the config plugin validates, since Fastify takes it before any plugin runs.
 */
export function createApp (opts: AppOptions & Pick<FastifyServerOptions, 'logger' | 'keepAliveTimeout' | 'requestTimeout'> = {}) {
  const { env, ...server } = opts
  const trusted = parseTrustProxy((env ?? process.env).TRUST_PROXY)
  // A hop count as Fastify applies it (its types take no number): trust the nearest n addresses.
  const trustProxy = typeof trusted === 'number' ? (_address: string, hop: number) => hop < trusted : trusted
  const fastify = Fastify({ ...serverOptions, trustProxy, logger: false, ...server })
  fastify.register(appPlugin, { env })
  return fastify
}
