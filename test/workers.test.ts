import t, { type Test } from 'tap'
import { availableParallelism, tmpdir } from 'node:os'
import { mkdtempSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { createApp } from '../app.js'
import { createWorkerPool } from '../classifier/pool.js'
import { notificationsFor, notificationsFromMessages, prebuildMessages } from '../notifications/message.js'
import { frameOf } from '../bench/flows.js'
import { build, examples, parity, post, splitFrame, PANDAS_SPLIT } from './helper.js'

const { benign, attack } = examples
const columns = Object.keys(benign)
const row = columns.map(c => benign[c])

/** The app with every body on the main thread, and the same app with every body in a worker thread. */
async function pair (t: Test, env: NodeJS.ProcessEnv = {}) {
  const main = await build(t, { ...env, WORKERS: '0' })
  const pooled = await build(t, { ...env, WORKERS: '1', WORKER_MIN_BYTES: '0' })
  t.equal(main.workerPool, null)
  // Count the bodies the pool takes, to know the comparison compares the two paths.
  const pool = pooled.workerPool!
  const run = pool.run
  let taken = 0
  pool.run = (...args) => { taken++; return run(...args) }
  return { main, pooled, taken: () => taken }
}

// Bodies of every kind the route answers: predictions, and each 400 and 413 the checks give.
const bodies: Array<[string, unknown]> = [
  ['a split frame', splitFrame([benign, attack, benign, attack])],
  ['the parity rows', { columns: parity.columns, data: parity.data }],
  ['no index, nulls', splitFrame([{ ...attack, flow_byts_s: null }], { index: false })],
  ['zero rows', { columns, index: [], data: [] }],
  ['an extra top-level key', { ...splitFrame([attack]), extra: 1 }],
  ['empty body', ''],
  ['unparsable JSON', '{"columns": ['],
  ['prototype poisoning', '{"columns":[],"data":[],"__proto__":{"x":1}}'],
  ['constructor poisoning', '{"columns":[],"data":[],"constructor":{"prototype":{"x":1}}}'],
  ['records orientation', [benign]],
  ['data missing', { columns }],
  ['a column name that is not a string', { columns: [1, ...columns.slice(1)], data: [row] }],
  ['a cell that is an object', { columns, data: [row.map((v, i) => i === 3 ? { x: 1 } : v)] }],
  ['a row that is not a list', { columns, data: [row, 5] }],
  ['duplicate column names', { columns: [...columns, 'flow_duration'], data: [[...row, 1]] }],
  ['a row of the wrong length', { columns, data: [row, row.slice(1), row] }],
  ['index and data of different lengths', { columns, index: [0, 1], data: [row] }],
  ['missing features', { columns: columns.slice(2), data: [row.slice(2)] }],
  ['two columns naming one feature', { columns: [...columns, 'Flow Duration'], data: [[...row, 1]] }],
  ['a non-numeric value', { columns, data: [row, row.map((v, i) => i === 5 ? 'abc' : v)] }],
  ['too many rows', { columns, data: Array(6).fill(row) }],
]

// One pair for the comparisons: a worker thread takes seconds to start when the tests run TypeScript.
const { main, pooled, taken } = await pair(t, { MAX_ROWS: '5' })

t.test('the pool answers every body as the main thread does: same status, same bytes', async t => {
  for (const [name, body] of bodies) {
    const [a, b] = [await post(main, body), await post(pooled, body)]
    t.equal(b.statusCode, a.statusCode, `${name}: ${a.statusCode}`)
    t.equal(b.body, a.body, name)
  }
  t.equal(taken(), bodies.length, 'every body went to the pool')
})

t.test('random frames, valid or not, answer the same on both paths', async t => {
  const cell = fc.oneof(fc.double(), fc.integer(), fc.constant(null), fc.constantFrom('Infinity', '-inf', 'nan', '12', 'abc', ''), fc.boolean())
  await fc.assert(fc.asyncProperty(
    fc.subarray(columns, { minLength: columns.length - 2 }),
    fc.array(fc.array(cell, { minLength: columns.length - 3, maxLength: columns.length }), { maxLength: 6 }),
    async (cols, data) => {
      const body = { columns: cols, data }
      const [a, b] = [await post(main, body), await post(pooled, body)]
      return a.statusCode === b.statusCode && a.body === b.body
    }), { numRuns: 60 })
})

t.test('through a real server: a 10,000-row body goes to a worker and answers as on the main thread', async t => {
  const main = await build(t, { WORKERS: '0' })
  const app = createApp({ env: { WORKERS: '2' } })
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const run = app.workerPool!.run
  let taken = 0
  app.workerPool!.run = (...args) => { taken++; return run(...args) }
  const big = frameOf(10000)
  const ask = (body: unknown) => fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: JSON.stringify(body) })
  const res = await ask(big)
  t.equal(res.status, 200)
  const expected = await post(main, big)
  t.equal(await res.text(), expected.body)
  t.equal(taken, 1)
  // A bad cell in the last row: the same 400, naming row and column.
  const bad = { ...big, data: big.data.map((r, i) => i === 9999 ? r.map((v, c) => c === 7 ? 'oops' : v) : r) }
  const refused = await ask(bad)
  t.equal(refused.status, 400)
  const text = await refused.text()
  t.equal(text, (await post(main, bad)).body)
  t.match(JSON.parse(text).message, new RegExp(`^row 9999, column "${big.columns[7]}": "oops" is not a number`))
  // A small body stays on the main thread.
  t.equal((await ask(splitFrame([attack]))).status, 200)
  t.equal(taken, 2)
})

t.test('notifications of a worker-classified request equal the main thread\'s: same bodies, same order', async t => {
  for (const NOTIFY of ['all', 'attacks']) {
    const dir = mkdtempSync(join(tmpdir(), 'ml-ids-workers-'))
    const logOf = (name: string) => join(dir, `${name}.jsonl`)
    const main = createApp({ env: { WORKERS: '0', NOTIFY, NOTIFY_LOG_FILE: logOf('main'), NOTIFY_DATA_DIR: dir } })
    const pooled = createApp({ env: { WORKERS: '1', WORKER_MIN_BYTES: '0', NOTIFY, NOTIFY_LOG_FILE: logOf('pooled'), NOTIFY_DATA_DIR: dir } })
    const frame = splitFrame([benign, attack, attack, benign, attack], { extra: { timestamp: '21/02/2018 10:15:06' } })
    const noIndex = splitFrame([attack, benign], { index: false })
    for (const app of [main, pooled]) {
      for (const [i, body] of [frame, noIndex].entries()) {
        const res = await app.inject({ method: 'POST', url: '/api/predictions', headers: { 'content-type': PANDAS_SPLIT, 'x-request-id': `req-${i}` }, payload: JSON.stringify(body) })
        t.equal(res.statusCode, 200)
      }
      await app.close()
    }
    const lines = (name: string) => readFileSync(logOf(name), 'utf8').trim().split('\n')
    t.equal(lines('main').length, NOTIFY === 'all' ? 7 : 4, NOTIFY)
    t.same(lines('pooled'), lines('main'), `NOTIFY=${NOTIFY}`)
  }
})

t.test('prebuilt bodies give the notifications of the frame for every mode within theirs', async t => {
  fc.assert(fc.property(fc.array(fc.constantFrom(0, 1) as fc.Arbitrary<0 | 1>, { maxLength: 12 }), fc.boolean(), (predictions, withIndex) => {
    const frame = splitFrame(predictions.map(p => p === 1 ? attack : benign), { index: withIndex })
    const context = { model: 'm', requestId: 'r' }
    for (const built of ['all', 'attacks'] as const) {
      const prebuilt = prebuildMessages(frame, Uint8Array.from(predictions), built)
      for (const mode of built === 'all' ? ['all', 'attacks', 'none'] as const : ['attacks', 'none'] as const) {
        t.same(notificationsFromMessages(prebuilt, predictions, mode, context), notificationsFor(frame, predictions, mode, context))
      }
    }
  }), { numRuns: 50 })
})

t.test('WORKERS: the available CPUs by default, 0 for none; no pool for SageMaker', async t => {
  const app = await build(t)
  t.equal(app.workerPool?.size, availableParallelism())
  t.equal(app.config.WORKER_MIN_BYTES, 256 * 1024)
  t.equal((await build(t, { WORKERS: '3' })).workerPool?.size, 3)
  t.equal((await build(t, { WORKERS: '0' })).workerPool, null)
  t.equal((await build(t, { AWS_SAGEMAKER_ENDPOINT: 'ml-ids', AWS_REGION: 'us-east-1' })).workerPool, null)
  await t.rejects(build(t, { WORKERS: '-1' }), { message: /WORKERS must be >= 0/ })
  await t.rejects(build(t, { WORKERS: 'many' }), { message: /WORKERS must be integer/ })
})

t.test('close() ends the worker threads and refuses later work', async t => {
  const app = await build(t, { WORKERS: '2', WORKER_MIN_BYTES: '0' })
  const pool = app.workerPool!
  t.same(pool.workers(), [], 'no thread before there is work')
  // Two requests at once need both threads.
  const answers = await Promise.all([post(app, splitFrame([attack])), post(app, splitFrame([benign]))])
  t.same(answers.map(res => res.json()), [[1], [0]])
  // The second thread may still be starting when the first has answered both.
  while (pool.workers().length < 2) await new Promise(resolve => setTimeout(resolve, 20))
  const workers = pool.workers()
  t.ok(workers.every(worker => worker.threadId > 0), 'two threads running')
  await app.close()
  t.ok(workers.every(worker => worker.threadId === -1), 'both ended')
  t.same(pool.workers(), [])
  await t.rejects(pool.run(Buffer.from('{}'), 'none'), { message: /closed/ })
})

t.test('a worker that cannot load the model fails the work given to it, naming the problem', async t => {
  const pool = createWorkerPool(1, { modelDir: '/nonexistent', maxRows: 10 })
  t.teardown(() => pool.close())
  await t.rejects(pool.run(Buffer.from('{}'), 'none'), { message: /worker thread could not start: cannot read \/nonexistent\/metadata.json/ })
})
