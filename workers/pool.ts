import type { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import type { WorkerOptions, WorkerResult, WorkerTask } from './worker.js'
import { OverloadedError } from '../errors.js'
import { startThread } from '../threads.js'

/** How much work may wait for a thread: past either bound a task is refused (503) rather than queued. */
export interface QueueLimits {
  /** Tasks waiting at once. */
  maxEntries: number
  /** Body bytes waiting at once. */
  maxBytes: number
}

/** An error a worker met, with the status and code the client would have had from the main thread. */
export class WorkerTaskError extends Error {
  constructor (message: string, readonly statusCode: number, readonly code?: string) {
    super(message)
  }
}

// The compiled worker next to this file, or the TypeScript source when the tests run the sources.
const workerFile = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url)

interface Pending {
  id: number
  task: WorkerTask
  transfer: ArrayBuffer[]
  bytes: number
  resolve: (result: Exclude<WorkerResult, { error: unknown }>) => void
  reject: (err: Error) => void
  /** Stops listening to the caller's signal once the task leaves the queue. */
  dequeued: () => void
}

/**
 * A pool of up to `size` worker threads, each with the embedded model, taking tasks in arrival order.
 * One task per worker at a time, so a queued task waits for the first free worker, never behind a
 * busy one. Threads start when work first waits for one (a service that never sees a large body
 * never pays for them) and are kept; one that dies is replaced on demand. The queue is bounded
 * (`limits`: 503 past it), and a task whose caller's signal aborts while it waits leaves the queue.
 */
export function createWorkerPool (size: number, options: WorkerOptions, limits: QueueLimits = { maxEntries: Infinity, maxBytes: Infinity },
  events: { onStartFailure?: (err: Error) => void } = {}) {
  const idle: Worker[] = []
  const busy = new Map<Worker, Pending>()
  const running = new Set<Worker>()
  const queue: Pending[] = []
  let queuedBytes = 0
  let starting = 0
  let nextId = 0

  function take (): Pending {
    const pending = queue.shift()!
    queuedBytes -= pending.bytes
    pending.dequeued()
    return pending
  }
  let closed = false

  function dispatch () {
    while (idle.length > 0 && queue.length > 0) {
      const worker = idle.pop()!
      const pending = take()
      busy.set(worker, pending)
      worker.postMessage({ id: pending.id, task: pending.task }, pending.transfer)
    }
    // Work waiting for a thread that is not starting yet: start one, up to the pool's size.
    if (closed) return
    while (queue.length > starting && running.size + starting < size) {
      starting++
      start().then(worker => {
        starting--
        if (closed) {
          worker.terminate().catch(() => {})
          return
        }
        running.add(worker)
        idle.push(worker)
        dispatch()
      }, (err: Error) => {
        starting--
        events.onStartFailure?.(err)
        // With threads running, the queue waits for them. With none, nothing queued can be served now:
        // refused as busy (503, the client retries), since the main thread loaded the same model, so
        // what stopped this thread is most likely passing (too many open files, memory); the next
        // task tries again.
        if (running.size === 0 && starting === 0) {
          while (queue.length > 0) take().reject(new OverloadedError('no worker thread could start to classify this body: retry shortly'))
        }
      })
    }
  }

  async function start (): Promise<Worker> {
    const worker = startThread(workerFile, { workerData: { mlIdsWorker: options } })
    const first = await Promise.race([
      once(worker, 'message') as Promise<[{ ready?: true, failed?: string }]>,
      once(worker, 'exit').then(([code]) => [{ failed: `exited with code ${code}` }]),
    ])
    if (first[0].failed !== undefined) {
      await worker.terminate()
      throw new Error(`worker thread could not start: ${first[0].failed}`)
    }
    worker.on('message', ({ result }: { id: number, result: WorkerResult }) => {
      const pending = busy.get(worker)!
      busy.delete(worker)
      idle.push(worker)
      if ('error' in result) pending.reject(new WorkerTaskError(result.error.message, result.error.statusCode, result.error.code))
      else pending.resolve(result)
      dispatch()
    })
    // A thread that dies fails its task and leaves the pool; the next task that waits starts another.
    worker.on('error', err => { busy.get(worker)?.reject(err) })
    worker.on('exit', () => {
      busy.get(worker)?.reject(new Error('worker thread exited'))
      busy.delete(worker)
      running.delete(worker)
      const i = idle.indexOf(worker)
      if (i !== -1) idle.splice(i, 1)
      dispatch()
    })
    return worker
  }

  return {
    size,
    /** Parses, checks and classifies a body in a worker. Client errors reject as WorkerTaskError. */
    run (body: Buffer, task: Omit<WorkerTask, 'body'>, signal?: AbortSignal): Promise<Exclude<WorkerResult, { error: unknown }>> {
      if (closed) return Promise.reject(new Error('the worker pool is closed'))
      if (signal?.aborted === true) return Promise.reject(signal.reason)
      // Waiting only when no thread is free: a free one takes the task at once.
      const waits = idle.length === 0
      if (waits && (queue.length + 1 > limits.maxEntries || queuedBytes + body.length > limits.maxBytes)) {
        return Promise.reject(new OverloadedError(`the worker threads are busy (${queue.length} bodies, ${queuedBytes} bytes waiting): retry shortly`))
      }
      // A body that owns its memory is handed over, not copied.
      const owns = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength
      const bytes = owns ? body : Uint8Array.prototype.slice.call(body)
      return new Promise((resolve, reject) => {
        const pending: Pending = { id: nextId++, task: { ...task, body: bytes }, transfer: [bytes.buffer as ArrayBuffer], bytes: bytes.byteLength, resolve, reject, dequeued: () => {} }
        if (signal !== undefined) {
          // The client went while its body waited: it leaves the queue, its bytes with it.
          const cancel = () => {
            const at = queue.indexOf(pending)
            if (at === -1) return
            queue.splice(at, 1)
            queuedBytes -= pending.bytes
            reject(signal.reason)
          }
          signal.addEventListener('abort', cancel, { once: true })
          pending.dequeued = () => signal.removeEventListener('abort', cancel)
        }
        queue.push(pending)
        queuedBytes += pending.bytes
        dispatch()
      })
    },
    /** Tasks and body bytes waiting for a thread, for tests and metrics. */
    queued: () => ({ entries: queue.length, bytes: queuedBytes }),
    /** Ends every thread; what has not started is refused. */
    async close () {
      closed = true
      while (queue.length > 0) take().reject(new Error('the worker pool is closed'))
      await Promise.all([...running].map(worker => worker.terminate()))
    },
    /** The threads running now, for tests. */
    workers: () => [...running],
  }
}

export type WorkerPool = ReturnType<typeof createWorkerPool>
