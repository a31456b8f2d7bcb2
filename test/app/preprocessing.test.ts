import t from 'tap'
import { createEmbeddedClassifier } from '../../classifier/embedded.js'
import { loadModel } from '../../classifier/model.js'
import { fillFeatures, planFeatures, snakeCase } from '../../classifier/features.js'
import { build, examples, modelDir, post, splitFrame } from '../helper.js'

const classifier = createEmbeddedClassifier(loadModel(modelDir))
const probability = async (flow: Record<string, unknown>) => (await classifier.score(splitFrame([flow]))).scores[0]

t.test('snake_case names from CICFlowMeter-V3 headers', async t => {
  t.equal(snakeCase('Flow Byts/s'), 'flow_byts_s')
  t.equal(snakeCase('Down/Up Ratio'), 'down_up_ratio')
  t.equal(snakeCase('Tot Fwd Pkts'), 'tot_fwd_pkts')
  t.equal(snakeCase(' Fwd Pkts/b Avg '), 'fwd_pkts_b_avg')
  t.equal(snakeCase('flow_duration'), 'flow_duration')
})

t.test('cleaning: null, ±inf, NaN and negatives are missing; window sizes keep -1', async t => {
  const preprocessing = { column_names: 'snake_case' as const, non_finite: 'missing' as const, negative: 'missing' as const, negative_allowed: ['init_fwd_win_byts'] }
  const columns = ['Init Fwd Win Byts', 'a', 'b', 'c', 'd', 'e', 'f', 'g']
  const plan = planFeatures(columns, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'init_fwd_win_byts'], preprocessing)
  const out = new Float32Array(8)
  fillFeatures([-1, null, -5, 'Infinity', '-inf', 'NaN', '12.5', 16777217.5], 0, columns, plan, out)
  t.same([...out], [NaN, NaN, NaN, NaN, NaN, 12.5, 16777218, -1])
  t.throws(() => fillFeatures([1, 2, 3, 4, 5, 6, 'ten', 8], 4, columns, plan, out), { statusCode: 400, message: /row 4, column "f": "ten" is not a number/ })
  t.throws(() => fillFeatures([1, 2, 3, 4, 5, 6, '', 8], 0, columns, plan, out), { statusCode: 400, message: /is not a number/ }, 'an empty string is not a number')
  t.throws(() => fillFeatures([1, 2, 3, 4, 5, 6, true, 8], 0, columns, plan, out), { statusCode: 400, message: /true is not a number/ }, 'a boolean is not a number')
})

t.test('the model sees a negative, a null and an "Infinity" in a feature alike', async t => {
  const flow = { ...examples.attack }
  const asNull = await probability({ ...flow, flow_byts_s: null, flow_iat_min: null })
  t.equal(await probability({ ...flow, flow_byts_s: -3, flow_iat_min: -1 }), asNull)
  t.equal(await probability({ ...flow, flow_byts_s: 'Infinity', flow_iat_min: '-inf' }), asNull)
})

t.test('the cleaning rules come from the model\'s metadata', async t => {
  const { metadata } = loadModel(modelDir)
  t.same(metadata.preprocessing.negative_allowed, ['init_fwd_win_byts', 'init_bwd_win_byts'])
  const plan = planFeatures(metadata.features, metadata.features, metadata.preprocessing)
  const kept = metadata.features.filter((_, i) => plan.keepNegative[i] === 1)
  t.same(kept, ['init_fwd_win_byts', 'init_bwd_win_byts'])
  const keepAll = planFeatures(metadata.features, metadata.features, { ...metadata.preprocessing, negative: 'keep' })
  t.equal(keepAll.keepNegative.every(k => k === 1), true, 'a model trained on raw negatives keeps them all')
})

t.test('column order and extra columns do not change predictions', async t => {
  const flow = examples.attack
  const reversed = Object.fromEntries(Object.entries(flow).reverse())
  const withExtras = { timestamp: '21/02/2018 10:15:06', dst_port: 22, protocol: 6, ...flow, label: 'whatever' }
  t.equal(await probability(reversed), await probability(flow))
  t.equal(await probability(withExtras), await probability(flow))
})

t.test('a missing feature answers 400 listing it, through the API', async t => {
  const app = await build(t)
  const { flow_duration: _a, idle_min: _b, ...rest } = examples.benign
  const res = await post(app, splitFrame([rest]))
  t.equal(res.statusCode, 400)
  t.equal(res.json().message, 'missing features the model needs: flow_duration, idle_min')
  t.equal(res.json().code, 'MISSING_FEATURES')
})
