import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import type { Prediction } from '../schemas/predictions.js'
import { notificationsFor, type Notification, type NotifyGrouping, type NotifyMode } from '../notifications/message.js'
import { checkedFrame, checkedMlflowFrame, compileFrameValidator, compileMlflowValidator } from '../input/body.js'
import { createEmbeddedClassifier } from '../classifier/embedded.js'
import { loadModel } from '../classifier/model.js'
import type { DriftCounts } from '../classifier/drift.js'

/** What a worker thread is started with. */
export interface WorkerOptions {
  modelDir?: string
  maxRows: number
  /** ATTACK_THRESHOLD, as the main thread's classifier has it. */
  threshold?: number
  /** NOVELTY_THRESHOLD, as the main thread's classifier has it (NOTIFY=unfamiliar). */
  noveltyThreshold?: number
  /** Count each body's rows for the main thread's drift monitor (DRIFT_WINDOW_ROWS above 0). */
  drift?: boolean
}

export interface WorkerTask {
  /** The request body as received. */
  body: Uint8Array
  /** The route's path, which an error message names. */
  path: string
  /** The body's JSON shape: the split frame itself (`/api/*`, the default) or MLflow 2.x's (`/invocations`). */
  json?: 'split' | 'mlflow'
  /** `scores` (`/api/scores`): the probabilities (and unfamiliarity) too, not only the predictions. */
  answer?: 'predictions' | 'scores'
  /**
   * The notifications to build, decided on the main thread before dispatch (who receives them
   * depends on live subscribers there): the arguments of notificationsFor besides the frame.
   */
  notify: { kind: NotifyMode, grouping: NotifyGrouping, model: string, requestId: string }
}

/** A client error keeps the status, code and message the main thread would have answered. */
export type WorkerResult =
  | { predictions: Uint8Array, scores?: Float64Array, novelty?: Float64Array, notifications: Notification[], drift?: DriftCounts }
  | { error: { statusCode: number, code?: string, message: string } }

/**
 * The work done off the event loop: parse, check and classify a body with the same functions the
 * main thread uses (input/body.ts, the embedded model, notificationsFor), and answer the
 * predictions as bytes and the notifications as built, never the frame.
 */
export function createTaskHandler ({ modelDir, maxRows, threshold, noveltyThreshold, drift }: WorkerOptions) {
  const classifier = createEmbeddedClassifier(loadModel(modelDir), { threshold, noveltyThreshold, driftTally: drift })
  const validate = compileFrameValidator()
  // Compiled on the first MLflow body: most workers never see one.
  let validateMlflow: ReturnType<typeof compileMlflowValidator> | undefined
  return function handle ({ body, path, json = 'split', answer = 'predictions', notify }: WorkerTask): WorkerResult {
    try {
      const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
      const frame = json === 'mlflow'
        ? checkedMlflowFrame(bytes, { maxRows }, validateMlflow ??= compileMlflowValidator())
        : checkedFrame(bytes, { maxRows, path }, validate)
      const scored = answer === 'scores' ? classifier.scoreSync(frame) : undefined
      const predictions = scored?.predictions ?? classifier.predictSync(frame)
      const labels = Array.from(predictions) as Prediction[]
      // NOTIFY=unfamiliar: the benign rows the detector flags, as on the main thread.
      const unfamiliar = notify.kind === 'unfamiliar' ? classifier.flagUnfamiliar?.(frame, labels) : undefined
      const notifications = notify.kind === 'none' || predictions.length === 0
        ? []
        : notificationsFor(frame, labels, notify.kind, notify, notify.grouping, unfamiliar)
      const counted = classifier.driftTally?.take()
      return {
        predictions,
        ...(scored === undefined ? {} : { scores: scored.scores }),
        ...(scored?.novelty === undefined ? {} : { novelty: scored.novelty }),
        notifications,
        ...(counted === undefined ? {} : { drift: counted }),
      }
    } catch (err) {
      const { statusCode, code, message, stack } = err as { statusCode?: number, code?: string, message: string, stack?: string }
      if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) return { error: { statusCode, code, message } }
      // Anything else is a bug: the main thread logs it and answers 500 without the details.
      return { error: { statusCode: 500, message: stack ?? message } }
    }
  }
}

/** The typed arrays a result can hand over rather than copy. */
export function transferables (result: WorkerResult): ArrayBuffer[] {
  if ('error' in result) return []
  return [result.predictions, result.scores, result.novelty, result.drift?.counts]
    .filter(array => array !== undefined)
    .map(array => array.buffer as ArrayBuffer)
}

// Started by workers/pool.ts: load the model, say so, then answer tasks in order.
if (!isMainThread && parentPort !== null && (workerData as { mlIdsWorker?: WorkerOptions })?.mlIdsWorker !== undefined) {
  const port = parentPort
  try {
    const handle = createTaskHandler((workerData as { mlIdsWorker: WorkerOptions }).mlIdsWorker)
    port.on('message', ({ id, task }: { id: number, task: WorkerTask }) => {
      const result = handle(task)
      port.postMessage({ id, result }, transferables(result))
    })
    port.postMessage({ ready: true })
  } catch (err) {
    port.postMessage({ failed: (err as Error).message })
  }
}
