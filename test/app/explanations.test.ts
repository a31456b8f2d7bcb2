import t from 'tap'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApp } from '../../app.js'
import { createEmbeddedClassifier, EXPLAIN_ROWS_PER_SLICE } from '../../classifier/embedded.js'
import { loadModel } from '../../classifier/model.js'
import type { Explanation } from '../../schemas/explanations.js'
import { build, examples, metadata, modelDir, PANDAS_SPLIT, post, splitFrame } from '../helper.js'

/** Rows with XGBoost's own pred_contribs, margins and bias, written by training/shap_parity.py. */
const shap: {
  features: string[]
  columns: string[]
  data: Array<Array<number | string | null>>
  contributions: number[][]
  bias: number[]
  margins: number[]
} = JSON.parse(readFileSync(join(modelDir, 'shap-parity.json'), 'utf8'))

const explain = (app: import('fastify').FastifyInstance, body: unknown, query = '', headers: Record<string, string> = {}) => app.inject({
  method: 'POST',
  url: `/api/explanations${query}`,
  headers: { 'content-type': PANDAS_SPLIT, ...headers },
  payload: typeof body === 'string' ? body : JSON.stringify(body),
})

t.test('parity with XGBoost\'s pred_contribs on the committed fixture: max |diff| <= 1e-5', async t => {
  t.same(shap.features, metadata.features, 'the fixture is for this model')
  t.ok(shap.data.length >= 200, 'a few hundred rows')
  const cells = shap.data.flat()
  t.ok(cells.some(v => v === null), 'with missing values')
  t.ok(cells.some(v => typeof v === 'number' && v < 0), 'with negatives')
  const classifier = createEmbeddedClassifier(loadModel(modelDir))
  const explanations = await classifier.explain(shap)
  let worst = 0
  let worstBias = 0
  let worstMargin = 0
  let worstSum = 0
  explanations.forEach((e, r) => {
    shap.features.forEach((feature, f) => { worst = Math.max(worst, Math.abs(e.contributions[feature] - shap.contributions[r][f])) })
    worstBias = Math.max(worstBias, Math.abs(e.bias - shap.bias[r]))
    worstMargin = Math.max(worstMargin, Math.abs(e.margin - shap.margins[r]))
    const sum = Object.values(e.contributions).reduce((a, b) => a + b, e.bias)
    worstSum = Math.max(worstSum, Math.abs(sum - e.margin))
  })
  t.ok(worst <= 1e-5, `contributions: max |diff| ${worst.toExponential(2)}`)
  t.ok(worstBias <= 1e-5, `bias: max |diff| ${worstBias.toExponential(2)}`)
  t.ok(worstMargin <= 1e-5, `margins: max |diff| ${worstMargin.toExponential(2)}`)
  t.ok(worstSum <= 1e-6, `contributions + bias = margin: max |diff| ${worstSum.toExponential(2)}`)
  // The rows are not trivial: several features move most of them.
  const moved = explanations.filter(e => Object.values(e.contributions).filter(v => Math.abs(v) > 0.01).length >= 3)
  t.ok(moved.length > explanations.length / 2, `${moved.length} rows with 3+ features contributing`)
})

t.test('POST /api/explanations: one explanation per row, consistent with /api/predictions', async t => {
  const app = await build(t)
  const frame = splitFrame([examples.benign, examples.attack, examples.attack])
  const res = await explain(app, frame)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const body = res.json() as Explanation[]
  t.equal(body.length, 3)
  t.same(body.map(e => e.prediction), (await post(app, frame)).json(), 'the same predictions')
  for (const e of body) {
    t.same(Object.keys(e).sort(), ['bias', 'contributions', 'margin', 'novelty', 'prediction', 'score', 'unfamiliar'])
    t.same(Object.keys(e.contributions).sort(), [...metadata.features].sort(), 'every model feature')
    t.ok(Math.abs(e.score - 1 / (1 + Math.exp(-e.margin))) < 1e-12, 'score is the sigmoid of the margin')
    t.equal(e.prediction, e.score >= metadata.threshold ? 1 : 0)
    const magnitudes = Object.values(e.contributions).map(Math.abs)
    t.same(magnitudes, [...magnitudes].sort((a, b) => b - a), 'largest absolute value first')
    t.ok(Math.abs(Object.values(e.contributions).reduce((a, b) => a + b, e.bias) - e.margin) < 1e-6)
  }
  t.same((await explain(app, { columns: frame.columns, data: [] })).json(), [], 'zero rows, zero explanations')
})

t.test('?top=N keeps the N largest contributions by absolute value, through a listening server', async t => {
  const app = createApp({ env: {} })
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const body = JSON.stringify(splitFrame([examples.attack]))
  const request = (query: string) => fetch(`${url}/api/explanations${query}`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body })
  const [all] = await (await request('')).json() as Explanation[]
  const res = await request('?top=3')
  t.equal(res.status, 200)
  const [top] = await res.json() as Explanation[]
  t.same(Object.entries(top.contributions), Object.entries(all.contributions).slice(0, 3))
  t.same({ ...top, contributions: {} }, { ...all, contributions: {} }, 'the rest is unchanged')
  const [many] = await (await request('?top=5000')).json() as Explanation[]
  t.equal(Object.keys(many.contributions).length, metadata.features.length, 'top above the feature count keeps them all')
  for (const bad of ['?top=0', '?top=-1', '?top=abc', '?top=1.5', '?top=']) {
    const refused = await request(bad)
    t.equal(refused.status, 400, bad)
    t.match(await refused.json(), { code: 'VALIDATION_ERROR', message: /querystring/ }, `${bad} names the query string`)
  }
})

t.test('the predictions route\'s checks apply: content type, frame shape, features, values, rows', async t => {
  const app = await build(t, { EXPLAIN_MAX_ROWS: '5' })
  const frame = splitFrame([examples.attack, examples.benign])
  t.equal((await explain(app, frame, '', { 'content-type': 'text/plain' })).statusCode, 415)
  const short = structuredClone(frame)
  short.data[1].pop()
  t.match((await explain(app, short)).json(), { statusCode: 400, message: /row 1 has \d+ values but there are \d+ columns/ })
  const missing = { columns: frame.columns.filter(c => c !== 'flow_duration'), data: [frame.data[0].filter((_, i) => frame.columns[i] !== 'flow_duration')] }
  t.match((await explain(app, missing)).json(), { statusCode: 400, message: /missing features the model needs: flow_duration/ })
  const text = structuredClone(frame)
  text.data[0][frame.columns.indexOf('flow_duration')] = 'abc'
  t.match((await explain(app, text)).json(), { statusCode: 400, message: 'row 0, column "flow_duration": "abc" is not a number' })
  const many = splitFrame(Array.from({ length: 6 }, () => examples.benign))
  const res = await explain(app, many)
  t.equal(res.statusCode, 413)
  t.match(res.json(), { code: 'TOO_MANY_ROWS', message: '6 rows exceed the limit of 5 rows per request: split the frame' })
  t.equal((await explain(app, splitFrame(Array.from({ length: 5 }, () => examples.benign)))).statusCode, 200, 'at the limit')
})

t.test('the SageMaker backend answers 501, saying explanations need the embedded model', async t => {
  const app = await build(t, { AWS_SAGEMAKER_ENDPOINT: 'ml-ids', AWS_REGION: 'eu-west-1' })
  const res = await explain(app, splitFrame([examples.attack]))
  t.equal(res.statusCode, 501)
  t.match(res.json(), { statusCode: 501, error: 'Not Implemented', code: 'EXPLANATIONS_UNAVAILABLE', message: /explanations need the embedded model.*sagemaker/ })
})

t.test('with API_KEYS, explanations need a key', async t => {
  const app = await build(t, { API_KEYS: 'k1' })
  const frame = splitFrame([examples.attack])
  t.equal((await explain(app, frame)).statusCode, 401)
  t.equal((await explain(app, frame, '', { authorization: 'Bearer k1' })).statusCode, 200)
})

t.test('explanations are not notified: only predictions are', async t => {
  const file = join(mkdtempSync(join(tmpdir(), 'ml-ids-explain-')), 'notifications.jsonl')
  const app = createApp({ env: { NOTIFY_LOG_FILE: file } })
  await app.ready()
  t.equal((await explain(app, splitFrame([examples.attack, examples.attack, examples.attack]))).statusCode, 200)
  t.equal((await post(app, splitFrame([examples.attack]))).statusCode, 200)
  // Closing flushes the log: by then the prediction's line must be there, and the explained rows' would be too.
  await app.close()
  const lines = readFileSync(file, 'utf8').trim().split('\n')
  t.equal(lines.length, 1, 'one line, from the one predicted row')
})

t.test('large requests are explained in slices that let other work run', async t => {
  const classifier = createEmbeddedClassifier(loadModel(modelDir))
  const frame = { columns: shap.columns, data: Array.from({ length: EXPLAIN_ROWS_PER_SLICE * 3 + 7 }, (_, i) => shap.data[i % 20]) }
  let otherWorkRan = false
  const pending = classifier.explain(frame)
  setImmediate(() => { otherWorkRan = true })
  const explanations = await pending
  t.ok(otherWorkRan, 'the event loop ran other callbacks during the request')
  t.equal(explanations.length, frame.data.length)
  t.same(explanations[EXPLAIN_ROWS_PER_SLICE * 3 + 1], explanations[(EXPLAIN_ROWS_PER_SLICE * 3 + 1) % 20], 'rows are independent of their slice')
})

t.test('CICFlowMeter CSV explains the same as the same flows sent as pandas JSON', async t => {
  const app = await build(t)
  const csv = readFileSync(join(modelDir, '..', '..', 'examples', 'flows.csv'), 'utf8')
  const json = readFileSync(join(modelDir, '..', '..', 'examples', 'flows.json'), 'utf8')
  const fromCsv = await explain(app, csv, '?top=3', { 'content-type': 'text/csv' })
  t.equal(fromCsv.statusCode, 200)
  t.same(fromCsv.json(), (await explain(app, json, '?top=3')).json())
  const bad = csv.replace(/\r?\n([^\r\n]*)$/, '\nnot,a,flow\n')
  t.match((await explain(app, bad, '', { 'content-type': 'text/csv' })).json(), { statusCode: 400, message: /line \d/ })
})
