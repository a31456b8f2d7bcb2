import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import { prebuildMessages, type PrebuiltMessages } from '../notifications/message.js'
import { checkedFrame, compileFrameValidator } from './body.js'
import { createLocalClassifier } from './local.js'
import { loadModel } from './model.js'

/** What a worker thread is started with. */
export interface WorkerOptions {
  modelDir?: string
  maxRows: number
}

export interface WorkerTask {
  /** The request body as received. */
  body: Uint8Array
  /** Which rows' notification bodies to build as well: what NOTIFY lets through. */
  notify: 'all' | 'attacks' | 'none'
}

/** A client error keeps the status, code and message the main thread would have answered. */
export type WorkerResult =
  | { predictions: Uint8Array, messages?: PrebuiltMessages }
  | { error: { statusCode: number, code?: string, message: string } }

/**
 * The work done off the event loop: parse, check and classify a body with the same functions the
 * main thread uses (classifier/body.ts, the embedded model), and answer typed arrays, never the frame.
 */
export function createTaskHandler ({ modelDir, maxRows }: WorkerOptions) {
  const classifier = createLocalClassifier(loadModel(modelDir))
  const validate = compileFrameValidator()
  return function handle ({ body, notify }: WorkerTask): WorkerResult {
    try {
      const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
      const frame = checkedFrame(bytes, maxRows, validate)
      const predictions = classifier.predictSync(frame)
      if (notify === 'none' || predictions.length === 0) return { predictions }
      return { predictions, messages: prebuildMessages(frame, predictions, notify) }
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
  const list = [result.predictions.buffer as ArrayBuffer]
  if (result.messages) list.push(result.messages.ends.buffer as ArrayBuffer)
  return list
}

// Started by classifier/pool.ts: load the model, say so, then answer tasks in order.
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
