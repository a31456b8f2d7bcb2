import t, { type Test } from 'tap'
import { availableParallelism, tmpdir } from 'node:os'
import { mkdtempSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { createApp } from '../app.js'
import { MAX_JSON_DEPTH } from '../input/body.js'
import { createWorkerPool } from '../workers/pool.js'
import { projectRoot } from '../project.js'
import { build, examples, parity, post, splitFrame, postTo } from './helper.js'
import { snsServer } from './support/sns.js'

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
  // flow-input's checks before validation, on the split route.
  ['an MLflow dataframe_split body', { dataframe_split: splitFrame([attack]) }],
  ['an MLflow instances body', { instances: [benign] }],
  ['an MLflow field beside columns', { ...splitFrame([attack]), inputs: [1] }],
  ['too many rows, no columns', { data: Array(6).fill(row) }],
  // issue-9's nesting limit: scanned as the body arrives on the main thread, before JSON.parse in a worker.
  ['nested one level too deep', '{"data":' + '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH) + '}'],
  ['100,000 open brackets', '['.repeat(100_000)],
  ['brackets inside strings do not count', { columns: [...columns, '[[[[[[[[[[{{'], data: [[...row, 1]] }],
  ['a JSON string', '"text"'],
  ['a JSON number', '12'],
  ['null', 'null'],
]

// One pair for the comparisons: a worker thread takes seconds to start when the tests run TypeScript.
const { main, pooled, taken } = await pair(t, { MAX_ROWS: '5' })
const task = { path: '/api/predictions', notify: { kind: 'none', grouping: 'row', model: 'm', requestId: 'r' } } as const

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

t.test('/api/scores: the pool answers every body as the main thread does (scores, predictions, unfamiliarity; each error)', async t => {
  const before = taken()
  for (const [name, body] of bodies) {
    const [a, b] = [await postTo(main, '/api/scores', body), await postTo(pooled, '/api/scores', body)]
    t.equal(b.statusCode, a.statusCode, `${name}: ${a.statusCode}`)
    t.equal(b.body, a.body, name)
  }
  t.equal(taken() - before, bodies.length, 'every body went to the pool')
  // The model ships a detector: the pooled answer carries its scores.
  const ok = JSON.parse((await postTo(pooled, '/api/scores', splitFrame([benign, attack]))).body)
  t.equal(ok.scores.length, 2)
  t.same(ok.predictions, [0, 1])
  t.equal(ok.novelty.scores.length, 2)
})

t.test('random frames answer the same on /api/scores on both paths', async t => {
  const cell = fc.oneof(fc.double(), fc.integer(), fc.constant(null), fc.constantFrom('Infinity', 'nan', '12', 'abc'))
  await fc.assert(fc.asyncProperty(
    fc.array(fc.array(cell, { minLength: columns.length - 1, maxLength: columns.length }), { maxLength: 6 }),
    async data => {
      const body = { columns, data }
      const [a, b] = [await postTo(main, '/api/scores', body), await postTo(pooled, '/api/scores', body)]
      return a.statusCode === b.statusCode && a.body === b.body
    }), { numRuns: 40 })
})

// MLflow 2.x bodies of every kind /invocations answers, and each 400 and 413 its checks give.
const records = [benign, attack, { ...benign, flow_byts_s: null }]
const byColumn = Object.fromEntries(columns.map(c => [c, records.map(r => r[c] ?? null)]))
const mlflowBodies: Array<[string, unknown]> = [
  ['dataframe_split', { dataframe_split: splitFrame(records) }],
  ['dataframe_split without index', { dataframe_split: splitFrame(records, { index: false }) }],
  ['dataframe_records', { dataframe_records: records }],
  ['instances as records', { instances: records }],
  ['inputs as records', { inputs: records }],
  ['instances as columns', { instances: byColumn }],
  ['inputs as columns, with params', { inputs: byColumn, params: { x: 1 } }],
  ['records with different keys', { dataframe_records: [benign, { ...attack, extra_column: 'x' }] }],
  ['zero records', { dataframe_records: [] }],
  ['a bare split frame', splitFrame([attack])],
  ['an unknown field', { dataframe_records: records, extra: 1 }],
  ['two input fields', { dataframe_records: records, instances: records }],
  ['only params', { params: {} }],
  ['an empty object', {}],
  ['columns of different lengths', { inputs: { ...byColumn, [columns[0]]: [1] } }],
  ['a record that is not an object', { dataframe_records: [benign, 5] }],
  ['a cell that is an object', { dataframe_records: [{ ...benign, [columns[3]]: { x: 1 } }] }],
  ['a non-numeric value', { instances: [benign, { ...attack, [columns[5]]: 'abc' }] }],
  ['missing features', { dataframe_records: [{ [columns[0]]: 1 }] }],
  ['a bad dataframe_split', { dataframe_split: { columns, data: [row.slice(1)] } }],
  ['too many records', { dataframe_records: Array(6).fill(benign) }],
  ['too many rows by column', { inputs: Object.fromEntries(columns.map(c => [c, Array(6).fill(benign[c])])) }],
  ['too many split rows', { dataframe_split: { columns, data: Array(6).fill(row) } }],
  ['a list', [benign]],
  ['empty body', ''],
  ['unparsable JSON', '{"inputs": ['],
  ['prototype poisoning', '{"inputs":[],"__proto__":{"x":1}}'],
  ['nested one level too deep', '{"inputs":' + '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH) + '}'],
  ['null', 'null'],
  ['a JSON string', '"text"'],
]

t.test('/invocations: the pool answers every MLflow body as the main thread does', async t => {
  const before = taken()
  const statuses = new Set<number>()
  for (const [name, body] of mlflowBodies) {
    const [a, b] = [await postTo(main, '/invocations', body), await postTo(pooled, '/invocations', body)]
    t.equal(b.statusCode, a.statusCode, `${name}: ${a.statusCode}`)
    t.equal(b.body, a.body, name)
    statuses.add(a.statusCode)
  }
  t.equal(taken() - before, mlflowBodies.length, 'every body went to the pool')
  // The comparison compares answers and each kind of refusal.
  t.same([...statuses].sort(), [200, 400, 413])
})

t.test('CSV bodies and /api/explanations stay on the main thread', async t => {
  const before = taken()
  const csv = readFileSync(join(projectRoot(), 'examples', 'flows.csv'), 'utf8')
  for (const url of ['/api/predictions', '/api/scores', '/invocations']) {
    const ask = (app: typeof main) => app.inject({ method: 'POST', url, headers: { 'content-type': 'text/csv' }, payload: csv })
    const [a, b] = [await ask(main), await ask(pooled)]
    t.equal(b.statusCode, 200, url)
    t.equal(b.body, a.body, url)
  }
  const json = splitFrame([benign, attack])
  const [x, y] = [await postTo(main, '/api/explanations', json), await postTo(pooled, '/api/explanations', json)]
  t.equal(y.statusCode, 200)
  t.equal(y.body, x.body)
  t.equal(taken(), before, 'none went to the pool')
})

t.test('notifications of a worker-classified request equal the main thread\'s: SNS messages and log lines, in both groupings', async t => {
  const frame = splitFrame([benign, attack, attack, benign, attack], { extra: { timestamp: '21/02/2018 10:15:06' } })
  const noIndex = splitFrame([attack, benign], { index: false })
  const labelled = { ...splitFrame([attack, benign, attack]), index: ['a', 'b', 'c'] }
  for (const NOTIFY_GROUPING of ['row', 'request']) {
    for (const NOTIFY of ['all', 'attacks']) {
      const outputs: Record<string, { sns: string[], lines: string[] }> = {}
      for (const [name, workers] of [['main', { WORKERS: '0' }], ['pooled', { WORKERS: '1', WORKER_MIN_BYTES: '0' }]] as const) {
        const sns = await snsServer(t)
        const dir = mkdtempSync(join(tmpdir(), 'ml-ids-workers-'))
        const app = createApp({
          env: {
            ...workers,
            NOTIFY,
            NOTIFY_GROUPING,
            NOTIFY_LOG_FILE: join(dir, 'notifications.jsonl'),
            NOTIFY_DATA_DIR: dir,
            AWS_SNS_PREDICTIONS_TOPIC: 'arn:aws:sns:eu-west-1:123456789012:ml-ids-predictions',
            AWS_SNS_HOST: sns.url,
            AWS_ACCESS_KEY: 'AKIDEXAMPLE',
            AWS_SECRET_KEY: 'secret',
          },
        })
        const run = () => app.workerPool?.run
        let pooledRuns = 0
        await app.ready()
        if (name === 'pooled') {
          const original = run()!
          app.workerPool!.run = (...args) => { pooledRuns++; return original(...args) }
        }
        // Every pooled route announces what it classified, the same way.
        for (const [r, url] of ['/api/predictions', '/api/scores', '/invocations'].entries()) {
          for (const [i, body] of [frame, noIndex, labelled].entries()) {
            const payload = JSON.stringify(url === '/invocations' ? { dataframe_split: body } : body)
            const res = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', 'x-request-id': `req-${r}-${i}` }, payload })
            t.equal(res.statusCode, 200)
          }
        }
        if (name === 'pooled') t.equal(pooledRuns, 9, 'classified in the worker')
        await app.close()
        const lines = readFileSync(join(dir, 'notifications.jsonl'), 'utf8').trim().split('\n')
        const started = Date.now()
        while (sns.accepted.length < lines.length && Date.now() - started < 10000) await new Promise(resolve => setTimeout(resolve, 10))
        outputs[name] = { lines, sns: sns.accepted.map(m => JSON.stringify([m.message, m.attributes])).sort() }
      }
      const what = `NOTIFY=${NOTIFY}, NOTIFY_GROUPING=${NOTIFY_GROUPING}`
      // Rows: 10 in all per route, 6 of them attacks; request grouping: one message per request and class present.
      const expected = 3 * (NOTIFY_GROUPING === 'row' ? (NOTIFY === 'all' ? 10 : 6) : (NOTIFY === 'all' ? 6 : 3))
      t.equal(outputs.main.lines.length, expected, what)
      t.same(outputs.pooled.lines, outputs.main.lines, `${what}: log lines, in order`)
      t.equal(outputs.main.sns.length, expected, `${what}: published`)
      t.same(outputs.pooled.sns, outputs.main.sns, `${what}: SNS messages and attributes`)
    }
  }
})

t.test('WORKERS: the available CPUs but the main thread\'s by default (at least 1), 0 for none; no pool for SageMaker', async t => {
  const app = await build(t)
  t.equal(app.workerPool?.size, Math.max(1, availableParallelism() - 1))
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
  await t.rejects(pool.run(Buffer.from('{}'), task), { message: /closed/ })
})

t.test('a worker that cannot start: its work is refused 503 (retry), the cause reported to the operator, and the next task tries again', async t => {
  const failures: Error[] = []
  const pool = createWorkerPool(1, { modelDir: '/nonexistent', maxRows: 10 }, undefined, { onStartFailure: err => failures.push(err) })
  t.teardown(() => pool.close())
  for (const round of [1, 2]) {
    await t.rejects(pool.run(Buffer.from('{}'), task), { statusCode: 503, code: 'OVERLOADED', message: 'no worker thread could start to classify this body: retry shortly' }, `task ${round}`)
    t.equal(failures.length, round, 'a start tried for each')
    t.match(failures[round - 1].message, /worker thread could not start: cannot read \/nonexistent\/metadata.json/)
  }
})
