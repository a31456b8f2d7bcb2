import type { Worker } from 'node:worker_threads'
import type { Config } from '../schemas/config.js'
import type { Notification } from './message.js'
import type { CallFailure, Outcome, Sender } from './sender.js'
import { startThread } from '../threads.js'

// The compiled worker next to this file, or the TypeScript source when the tests run the sources.
const workerFile = new URL(import.meta.url.endsWith('.ts') ? './sender-worker.ts' : './sender-worker.js', import.meta.url)

/** What the main thread posts to the sender thread. */
export type SenderRequest = { id: number, batch: readonly Notification[] } | { abort: true }
/** What the sender thread answers, one per request. */
export interface SenderReply { id: number, result: Outcome[] | CallFailure }
/** The sender thread's workerData. */
export interface SenderWorkerData { mlIdsSnsSender: { config: Config & { AWS_SNS_PREDICTIONS_TOPIC: string } } }

/**
 * A Sender whose SNS calls run in a thread of their own: the same createSender and @aws-sdk/client-sns
 * client, so the wire is unchanged, but the CPU a call costs (URL-encoding the Query form, signing,
 * writing the socket, reading the XML answer: about 8 µs per row of a grouped message) leaves the event
 * loop that answers requests. A notification crosses as a copied string.
 *
 * The thread starts with the first call. If it dies, its calls fail as a whole (the publisher retries
 * them, as any failed call) and the next call starts another.
 */
export function createThreadSender (config: Config & { AWS_SNS_PREDICTIONS_TOPIC: string }): Sender & { thread: () => Worker | undefined } {
  let worker: Worker | undefined
  const pending = new Map<number, (result: Outcome[] | CallFailure) => void>()
  const signals = new WeakSet<AbortSignal>()
  let nextId = 0

  function failAll (message: string): void {
    for (const [id, resolve] of pending) {
      pending.delete(id)
      resolve({ code: 'SenderThreadExited', message, splittable: false })
    }
  }

  function thread (): Worker {
    if (worker !== undefined) return worker
    const started = startThread(workerFile, { workerData: { mlIdsSnsSender: { config } } satisfies SenderWorkerData })
    // Calls in flight do not keep a process alive that has nothing else to do; the journal has them.
    started.unref()
    started.on('message', ({ id, result }: SenderReply) => {
      const resolve = pending.get(id)
      pending.delete(id)
      resolve?.(result)
    })
    started.on('error', err => failAll(`the SNS sender thread failed: ${err.message}`))
    started.on('exit', code => {
      if (worker === started) worker = undefined
      failAll(`the SNS sender thread exited with code ${code}`)
    })
    worker = started
    return started
  }

  return {
    send (batch: readonly Notification[], signal: AbortSignal): Promise<Outcome[] | CallFailure> {
      let target: Worker
      try {
        target = thread()
      } catch (err) {
        // A thread that cannot start fails the call, which the publisher retries: never the process.
        return Promise.resolve({ code: 'SenderThreadExited', message: `the SNS sender thread could not start: ${(err as Error).message}`, splittable: false })
      }
      if (!signals.has(signal)) {
        signals.add(signal)
        signal.addEventListener('abort', () => worker?.postMessage({ abort: true } satisfies SenderRequest), { once: true })
      }
      const id = nextId++
      return new Promise(resolve => {
        pending.set(id, resolve)
        target.postMessage({ id, batch } satisfies SenderRequest)
        if (signal.aborted) target.postMessage({ abort: true } satisfies SenderRequest)
      })
    },
    async close (): Promise<void> {
      const stopping = worker
      worker = undefined
      await stopping?.terminate()
    },
    /** The thread running now, if any: for tests. */
    thread: () => worker,
  }
}
