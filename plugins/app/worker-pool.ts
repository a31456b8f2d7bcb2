import fp from 'fastify-plugin'
import AjvCompiler from '@fastify/ajv-compiler'
import { availableParallelism } from 'node:os'
import type { FastifyInstance, FastifyRequest, FastifySchemaCompiler } from 'fastify'
import { projectPath } from '../../project.js'
import { parseJsonBody } from '../../input/body.js'
import { createWorkerPool, type WorkerPool } from '../../workers/pool.js'
import { AJV_OPTIONS } from '../../schemas/ajv.js'
import type { Prediction } from '../../schemas/predictions.js'
import type { Scored } from '../../classifier/types.js'
import type { WorkerTask } from '../../workers/worker.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Worker threads for large bodies; null when WORKERS=0 or the model is remote (SageMaker). */
    workerPool: WorkerPool | null
  }
  interface FastifyContextConfig {
    /**
     * JSON bodies of this many bytes and up are kept as bytes and parsed, checked and classified in a
     * worker thread (WORKER_MIN_BYTES, on a route declared with `pooledRoute` while there is a pool).
     */
    pooledFromBytes?: number
  }
  interface FastifyRequest {
    /**
     * Classifies a body kept as bytes in a worker thread, which parses and checks it as the main
     * thread would and builds its notifications as planned here; records it like `request.classify`.
     */
    classifyPooled(body: Buffer, opts?: { json?: 'split' | 'mlflow' }): Promise<Prediction[]>
    /** The same for `/api/scores`: the worker answers the probabilities (and unfamiliarity) too. */
    scorePooled(body: Buffer): Promise<Scored>
  }
}

/** The default pool: every CPU this process may use but the main thread's, and at least one. */
export const defaultWorkers = () => Math.max(1, availableParallelism() - 1)

/**
 * Route options of a route that classifies and whose large JSON bodies go to a worker thread:
 * `config` (spread it with the route's other options), and a validator that lets a body kept as bytes
 * through (the worker validates it with the same schema).
 *
 * ```ts
 * fastify.post('/x', { ...pooledRoute(fastify), ...flowInput(fastify.config), schema }, async request =>
 *   Buffer.isBuffer(request.body) ? await request.classifyPooled(request.body) : ...)
 * ```
 */
export function pooledRoute (fastify: FastifyInstance) {
  const pooled = fastify.workerPool !== null
  return {
    config: { classifies: true, ...(pooled ? { pooledFromBytes: fastify.config.WORKER_MIN_BYTES } : {}) },
    ...(pooled ? { validatorCompiler: passBytes(fastify) } : {}),
  }
}

/**
 * Fastify's validator compiler (the same Ajv compiler, options and shared schemas), except that a
 * body kept as bytes passes: the worker validates it with the same schema.
 */
function passBytes (fastify: FastifyInstance): FastifySchemaCompiler<unknown> {
  let compile: ReturnType<ReturnType<typeof AjvCompiler>> | undefined
  return route => {
    compile ??= AjvCompiler()(fastify.getSchemas() as Parameters<ReturnType<typeof AjvCompiler>>[0], AJV_OPTIONS)
    const validate = compile(route as Parameters<typeof compile>[0]) as ((data: unknown) => boolean) & { errors?: unknown }
    if (route.httpPart !== 'body') return validate
    const validateBody = (data: unknown) => Buffer.isBuffer(data) || validate(data)
    return Object.defineProperty(validateBody, 'errors', { get: () => validate.errors })
  }
}

/**
 * The worker path, in one place: worker threads, each with the embedded model, for the bodies large
 * enough to hold up the event loop (WORKER_MIN_BYTES); the app's one `application/json` parser, which
 * keeps those bodies as bytes on pooled routes and parses every other JSON body of every route the
 * same way (input/body.ts: Fastify's parser, with the depth scan); `pooledRoute` for the routes
 * (/api/predictions, /api/scores, /invocations); and `request.classifyPooled` (`scorePooled` for
 * /api/scores), which plan the notifications and run the pool. Threads start with the
 * first such body and end with the app.
 */
export default fp(async function workerPool (fastify) {
  const { WORKERS, MAX_ROWS, MODEL_DIR, ATTACK_THRESHOLD, NOVELTY_THRESHOLD, WORKER_QUEUE_MAX, WORKER_QUEUE_MAX_BYTES } = fastify.config
  // Rows classified in a worker count towards the main thread's drift window.
  const drift = fastify.classifier.drift !== undefined

  // Every JSON body of the app: bytes for a worker on a pooled route, else parsed here as Fastify would.
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    if (body.length >= (request.routeOptions.config.pooledFromBytes ?? Infinity)) return done(null, body)
    try {
      done(null, parseJsonBody(body, { depthChecked: true }))
    } catch (err) {
      done(err as Error, undefined)
    }
  })

  // availableParallelism() follows the container's CPU limit (cgroups) on the Node of the image. One CPU
  // is left to the main thread, which serves HTTP: with a worker on every CPU of a 2-CPU host, small
  // requests beside big ones fell to about half their throughput; with one, to 0.8x (bench/README.md).
  const size = WORKERS ?? defaultWorkers()
  // SageMaker classifies remotely: its requests wait on the network, not on this process's CPU.
  const pool = size === 0 || fastify.classifier.backend !== 'local'
    ? null
    : createWorkerPool(size, { modelDir: projectPath(MODEL_DIR), maxRows: MAX_ROWS, threshold: ATTACK_THRESHOLD, noveltyThreshold: NOVELTY_THRESHOLD, drift }, { maxEntries: WORKER_QUEUE_MAX, maxBytes: WORKER_QUEUE_MAX_BYTES },
      { onStartFailure: err => { fastify.log.error({ err }, 'a worker thread could not start: its bodies are refused 503 until one does') } })
  fastify.decorate('workerPool', pool)
  if (pool !== null) {
    fastify.log.info({ workers: size }, 'worker threads start with the first large body')
    fastify.addHook('onClose', async () => await pool.close())
  }

  /** Runs a kept body in a worker, recorded as a classification of this request; the worker's whole answer. */
  async function runPooled (request: FastifyRequest, body: Buffer, shape: Pick<WorkerTask, 'json' | 'answer'>) {
    if (pool === null) throw new Error(`${request.routeOptions.url ?? 'this route'} kept a body for a worker thread, but there is no pool`)
    // Who receives which notifications is known here, not in the worker: it builds them as told.
    const notify = { kind: fastify.notifications.kind(), grouping: fastify.notifications.grouping, model: fastify.classifier.describe().name, requestId: request.id }
    const path = request.url.split('?')[0]
    return await request.classifyBuilt(async signal => {
      const result = await pool.run(body, { path, notify, ...shape }, signal)
      if (result.drift !== undefined) fastify.classifier.drift?.merge(result.drift)
      return { ...result, predictions: Array.from(result.predictions) as Prediction[] }
    })
  }

  fastify.decorateRequest('classifyPooled', async function classifyPooled (this: FastifyRequest, body: Buffer, opts: { json?: 'split' | 'mlflow' } = {}): Promise<Prediction[]> {
    return (await runPooled(this, body, { json: opts.json ?? 'split' })).predictions
  })
  fastify.decorateRequest('scorePooled', async function scorePooled (this: FastifyRequest, body: Buffer): Promise<Scored> {
    const { predictions, scores, novelty } = await runPooled(this, body, { answer: 'scores' })
    return { predictions, scores: Array.from(scores!), ...(novelty === undefined ? {} : { novelty: Array.from(novelty) }) }
  })
}, { name: 'worker-pool', dependencies: ['env', 'classifier', 'classifications', 'notifications'] })
