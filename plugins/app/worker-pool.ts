import fp from 'fastify-plugin'
import { availableParallelism } from 'node:os'
import { createWorkerPool, type WorkerPool } from '../../classifier/pool.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Worker threads for large bodies; null when WORKERS=0 or the model is remote (SageMaker). */
    workerPool: WorkerPool | null
  }
}

/** The default pool: every CPU this process may use but the main thread's, and at least one. */
export const defaultWorkers = () => Math.max(1, availableParallelism() - 1)

/**
 * Worker threads, each with the embedded model, for the bodies large enough to hold up the event loop
 * (WORKER_MIN_BYTES). They start with the first such bodies and end with the app.
 */
export default fp(async function workerPool (fastify) {
  const { WORKERS, MAX_ROWS, MODEL_DIR, ATTACK_THRESHOLD, WORKER_QUEUE_MAX, WORKER_QUEUE_MAX_BYTES } = fastify.config
  // availableParallelism() follows the container's CPU limit (cgroups) on the Node of the image. One CPU
  // is left to the main thread, which serves HTTP: with a worker on every CPU of a 2-CPU host, small
  // requests beside big ones fell to about half their throughput; with one, to 0.8x (bench/README.md).
  const size = WORKERS ?? defaultWorkers()
  // SageMaker classifies remotely: its requests wait on the network, not on this process's CPU.
  if (size === 0 || fastify.classifier.backend !== 'local') {
    fastify.decorate('workerPool', null)
    return
  }
  const pool = createWorkerPool(size, { modelDir: MODEL_DIR, maxRows: MAX_ROWS, threshold: ATTACK_THRESHOLD },
    { maxEntries: WORKER_QUEUE_MAX, maxBytes: WORKER_QUEUE_MAX_BYTES })
  fastify.log.info({ workers: size }, 'worker threads start with the first large body')
  fastify.decorate('workerPool', pool)
  fastify.addHook('onClose', async () => await pool.close())
}, { name: 'worker-pool', dependencies: ['env', 'classifier'] })
