import t from 'tap'
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build, examples, metadata, modelDir, novelty, parity, splitFrame } from '../helper.js'

const scores = (app: Awaited<ReturnType<typeof build>>, body: unknown, url = '/api/scores') =>
  app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) })

t.test('POST /api/scores: model, threshold, the attack probability and the prediction of each row', async t => {
  const app = await build(t)
  const frame = { columns: parity.columns, data: parity.data }
  const res = await scores(app, frame)
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.same(Object.keys(body), ['model', 'threshold', 'scores', 'predictions', 'novelty'])
  t.equal(body.model, metadata.name)
  t.equal(body.threshold, metadata.threshold)
  t.equal(body.scores.length, parity.data.length)
  body.scores.forEach((p: number, i: number) => t.ok(Math.abs(p - parity.probabilities[i]) < 1e-5, `row ${i}`, { diagnostic: false }))
  t.same(body.predictions, body.scores.map((p: number) => p >= metadata.threshold ? 1 : 0))
  t.same(body.predictions, (await scores(app, frame, '/api/predictions')).json(), 'the same predictions as /api/predictions')
  t.same((await scores(app, { columns: parity.columns, data: [] })).json(), {
    model: metadata.name, threshold: metadata.threshold, scores: [], predictions: [], novelty: { threshold: novelty.threshold, scores: [], unfamiliar: [] },
  })
})

t.test('ATTACK_THRESHOLD overrides the model\'s threshold on every route, and /api/model shows it', async t => {
  // A flow scored between the two thresholds: benign at the model's, an attack at the lower one.
  const app = await build(t)
  const frame = { columns: parity.columns, data: parity.data }
  const base = (await scores(app, frame)).json()
  const i = base.scores.findIndex((p: number) => p > 0.05 && p < metadata.threshold)
  t.ok(i >= 0, 'a parity row below the model threshold')
  const lower = Math.max(0.01, Math.floor(base.scores[i] * 100) / 100)
  const tuned = await build(t, { ATTACK_THRESHOLD: String(lower) })
  const row = { columns: frame.columns, data: [frame.data[i]] }
  t.same((await scores(app, row, '/api/predictions')).json(), [0], 'benign at the model threshold')
  t.same((await scores(tuned, row, '/api/predictions')).json(), [1], 'an attack at ATTACK_THRESHOLD')
  t.match((await scores(tuned, row)).json(), { threshold: lower, predictions: [1] })
  t.same((await tuned.inject({ method: 'POST', url: '/invocations', headers: { 'content-type': 'application/json' }, payload: { dataframe_split: row } })).json(), { predictions: [1] }, '/invocations too')
  t.match((await tuned.inject('/api/model')).json(), { threshold: lower, model_threshold: metadata.threshold })
  t.notOk('model_threshold' in (await app.inject('/api/model')).json(), 'no override, no model_threshold')
  await t.rejects(build(t, { ATTACK_THRESHOLD: '1.5' }), /ATTACK_THRESHOLD must be < 1/)
})

t.test('/api/model shows the model card\'s operating table when metadata.json has one', async t => {
  const dir = join(mkdtempSync(join(tmpdir(), 'ml-ids-model-')), 'model')
  cpSync(modelDir, dir, { recursive: true })
  const operatingPoints = [
    { threshold: 0.2, recall: 0.9, false_positive_rate: 0.12 },
    { threshold: 0.4433, recall: 0.76, false_positive_rate: 0.03 },
  ]
  const withTable = { ...JSON.parse(readFileSync(join(dir, 'metadata.json'), 'utf8')), operating_points: operatingPoints }
  writeFileSync(join(dir, 'metadata.json'), JSON.stringify(withTable))
  const app = await build(t, { MODEL_DIR: dir })
  t.same((await app.inject('/api/model')).json().operating_points, operatingPoints)
  t.same((await (await build(t)).inject('/api/model')).json().operating_points, metadata.operating_points, 'the bundled model card\'s own table')
  const { operating_points: _dropped, ...withoutTable } = withTable
  writeFileSync(join(dir, 'metadata.json'), JSON.stringify(withoutTable))
  t.notOk('operating_points' in (await (await build(t, { MODEL_DIR: dir })).inject('/api/model')).json(), 'absent from the card: not shown')
  writeFileSync(join(dir, 'metadata.json'), JSON.stringify({ ...withTable, operating_points: [{ threshold: 0.2, recall: 2 }] }))
  await t.rejects(build(t, { MODEL_DIR: dir }), /operating_points\/0/, 'a malformed table stops start-up')
})

t.test('the OpenAPI request example is a real flow: it validates and predicts 200', async t => {
  const app = await build(t)
  const spec = app.swagger() as any
  t.same(spec.paths['/api/predictions'].post.requestBody, { $ref: '#/components/requestBodies/FlowsPandasSplitFrame' })
  const content = spec.components.requestBodies.FlowsPandasSplitFrame.content
  t.same(Object.keys(content), ['application/json', 'application/json; format=pandas-split', 'text/csv'])
  const example = spec.components.schemas.PandasSplitFrame.examples[0]
  t.same(example, JSON.parse(readFileSync(join(modelDir, '..', '..', 'examples', 'flows.json'), 'utf8')), 'examples/flows.json')
  const res = await scores(app, example, '/api/predictions')
  t.equal(res.statusCode, 200)
  t.same(res.json(), [0, 1])
  t.same((await scores(app, splitFrame([examples.benign]))).json().predictions, [0])
  const csvExample = content['text/csv'].example
  t.match(csvExample, /^Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,/, 'the CSV example is examples/flows.csv')
  const csv = await app.inject({ method: 'POST', url: '/api/predictions', headers: { 'content-type': 'text/csv' }, payload: csvExample })
  t.same(csv.json(), [0, 1])
})
