import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import type { WorkerOptions, WorkerResult, WorkerTask } from './worker.js'

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
  resolve: (result: Exclude<WorkerResult, { error: unknown }>) => void
  reject: (err: Error) => void
}

/**
 * A pool of up to `size` worker threads, each with the embedded model, taking tasks in arrival order.
 * One task per worker at a time, so a queued task waits for the first free worker, never behind a
 * busy one. Threads start when work first waits for one (a service that never sees a large body
 * never pays for them) and are kept; one that dies is replaced on demand.
 */
export function createWorkerPool (size: number, options: WorkerOptions) {
  const idle: Worker[] = []
  const busy = new Map<Worker, Pending>()
  const running = new Set<Worker>()
  const queue: Pending[] = []
  let starting = 0
  let nextId = 0
  let closed = false

  function dispatch () {
    while (idle.length > 0 && queue.length > 0) {
      const worker = idle.pop()!
      const pending = queue.shift()!
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
        // The model did not load: nothing queued can be served by a thread that would fail the same way.
        for (const pending of queue.splice(0)) pending.reject(err)
      })
    }
  }

  async function start (): Promise<Worker> {
    const worker = new Worker(workerFile, { workerData: { mlIdsWorker: options } })
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
    run (body: Buffer, task: Omit<WorkerTask, 'body'>): Promise<Exclude<WorkerResult, { error: unknown }>> {
      if (closed) return Promise.reject(new Error('the worker pool is closed'))
      // A body that owns its memory is handed over, not copied.
      const owns = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength
      const bytes = owns ? body : Uint8Array.prototype.slice.call(body)
      return new Promise((resolve, reject) => {
        queue.push({ id: nextId++, task: { ...task, body: bytes }, transfer: [bytes.buffer as ArrayBuffer], resolve, reject })
        dispatch()
      })
    },
    /** Ends every thread; what has not started is refused. */
    async close () {
      closed = true
      for (const pending of queue.splice(0)) pending.reject(new Error('the worker pool is closed'))
      await Promise.all([...running].map(worker => worker.terminate()))
    },
    /** The threads running now, for tests. */
    workers: () => [...running],
  }
}

export type WorkerPool = ReturnType<typeof createWorkerPool>
