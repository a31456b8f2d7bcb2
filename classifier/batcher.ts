import type { PandasSplitFrame } from '../schemas/predictions.js'
import { InvalidInputError } from '../errors.js'

export interface BatcherOptions {
  /** Most rows in one call. */
  maxRows: number
  /** Most bytes in one call's body (SageMaker's 6 MB, less headroom). */
  maxBytes: number
  /** Longest a request waits for others to join its batch while calls are in flight. */
  maxWaitMs: number
  /** Most calls in flight at once; batches grow while they wait for one to finish. */
  maxInFlight: number
}

/** One call to the model: a split frame's JSON and its row count in, one answer per row out. */
export type Invoke<T = number> = (body: string, rows: number) => Promise<T[]>

interface Item<T> {
  readonly rowsJson: string
  readonly rows: number
  readonly resolve: (predictions: T[]) => void
  readonly reject: (err: unknown) => void
  /** Stops listening to the request's signal once its batch is sent. */
  settled?: () => void
}

interface Batch<T> {
  readonly columnsJson: string
  readonly items: Array<Item<T>>
  rows: number
  bytes: number
  timer?: NodeJS.Timeout
  /** Its wait is over, but every call slot was taken: it goes as soon as one frees. */
  due: boolean
}

const bodyOf = (columnsJson: string, items: ReadonlyArray<{ readonly rowsJson: string }>) =>
  `{"columns":${columnsJson},"data":[${items.map(item => item.rowsJson).join(',')}]}`

/**
 * Adaptive batching, as model servers do it: the rows of concurrent requests with the same columns
 * go to the model in one call, and each request gets its own predictions back, in order. With no call
 * in flight a batch leaves at once (after the current tick, so requests arriving together share it);
 * while calls are in flight it waits up to `maxWaitMs` for company, and closes early at `maxRows` or
 * `maxBytes`. A failed call fails each of its requests with the same error, except that when the
 * model rejects the input of a batch of several requests, each is sent again alone, so one client's
 * bad rows cannot fail another's request. A request whose `signal` aborts while its batch waits
 * leaves it (its rows are not sent); once sent, its call runs to the end.
 */
export function createBatcher<T> (invoke: Invoke<T>, opts: BatcherOptions) {
  const open = new Map<string, Batch<T>>()
  const calls = new Set<Promise<void>>()
  let closing = false

  function call (columnsJson: string, items: ReadonlyArray<Item<T>>): void {
    for (const item of items) item.settled?.()
    const rows = items.reduce((sum, item) => sum + item.rows, 0)
    const done = invoke(bodyOf(columnsJson, items), rows).then(predictions => {
      let offset = 0
      for (const item of items) {
        item.resolve(predictions.slice(offset, offset + item.rows))
        offset += item.rows
      }
    }, err => {
      // Nothing was predicted: sending each request alone is safe, and isolates the bad one.
      if (err instanceof InvalidInputError && items.length > 1) {
        for (const item of items) call(columnsJson, [item])
        return
      }
      for (const item of items) item.reject(err)
    }).finally(() => {
      calls.delete(done)
      const due = [...open.values()].find(batch => batch.due)
      if (due !== undefined) flush(due)
    })
    calls.add(done)
  }

  function flush (batch: Batch<T>): void {
    if (open.get(batch.columnsJson) === batch) open.delete(batch.columnsJson)
    clearTimeout(batch.timer)
    call(batch.columnsJson, batch.items)
  }

  /** Sends the batch now if a call slot is free, otherwise as soon as one is. */
  function release (batch: Batch<T>): void {
    if (open.get(batch.columnsJson) !== batch) return
    if (calls.size < opts.maxInFlight || closing) flush(batch)
    else batch.due = true
  }

  return {
    submit (frame: PandasSplitFrame, signal?: AbortSignal): Promise<T[]> {
      const rows = frame.data.length
      if (rows === 0) return Promise.resolve([])
      if (signal?.aborted === true) return Promise.reject(signal.reason)
      const rowsJson = JSON.stringify(frame.data).slice(1, -1)
      const bytes = Buffer.byteLength(rowsJson) + 1
      const columnsJson = JSON.stringify(frame.columns)
      return new Promise<T[]>((resolve, reject) => {
        const item: Item<T> = { rowsJson, rows, resolve, reject }
        let batch = open.get(columnsJson)
        if (batch !== undefined && (batch.rows + rows > opts.maxRows || batch.bytes + bytes > opts.maxBytes)) {
          flush(batch)
          batch = undefined
        }
        if (batch === undefined) {
          const created: Batch<T> = { columnsJson, items: [], rows: 0, bytes: Buffer.byteLength(columnsJson) + 24, due: false }
          open.set(columnsJson, created)
          if (calls.size === 0) setImmediate(() => release(created))
          created.timer = setTimeout(() => release(created), opts.maxWaitMs)
          batch = created
        }
        batch.items.push(item)
        batch.rows += rows
        batch.bytes += bytes
        if (signal !== undefined) {
          const waiting = batch
          const leave = () => {
            const at = waiting.items.indexOf(item)
            // Sent already (the batch left the open map when it was flushed): the call answers it.
            if (at === -1 || open.get(waiting.columnsJson) !== waiting) return
            waiting.items.splice(at, 1)
            waiting.rows -= rows
            waiting.bytes -= bytes
            if (waiting.items.length === 0) {
              open.delete(waiting.columnsJson)
              clearTimeout(waiting.timer)
            }
            reject(signal.reason)
          }
          signal.addEventListener('abort', leave, { once: true })
          item.settled = () => signal.removeEventListener('abort', leave)
        }
        if (batch.rows >= opts.maxRows || batch.bytes >= opts.maxBytes) flush(batch)
      })
    },
    /** Sends what is waiting and resolves once every call has been answered. */
    async close (): Promise<void> {
      closing = true
      for (const batch of [...open.values()]) flush(batch)
      while (calls.size > 0) await Promise.allSettled([...calls])
    },
  }
}

export type Batcher<T> = ReturnType<typeof createBatcher<T>>
