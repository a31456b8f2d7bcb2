import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createEmbeddedClassifier, ROWS_PER_SLICE } from '../../classifier/embedded.js'
import { loadModel } from '../../classifier/model.js'
import { parseBaseScore, parseXGBoostModel, UnsupportedModelError } from '../../classifier/xgboost.js'
import { modelDir, parity, metadata } from '../helper.js'
import { stump } from '../support/models.js'

t.test('parity with XGBoost on the committed fixture: |diff| < 1e-6, no label flips', async t => {
  const classifier = createEmbeddedClassifier(loadModel(modelDir))
  const { scores: probabilities } = await classifier.score(parity)
  t.equal(probabilities.length, parity.probabilities.length)
  t.ok(parity.probabilities.length >= 200, 'a few hundred rows')
  let maxDiff = 0
  let flips = 0
  parity.probabilities.forEach((expected, i) => {
    maxDiff = Math.max(maxDiff, Math.abs(probabilities[i] - expected))
    if ((probabilities[i] >= metadata.threshold) !== (expected >= metadata.threshold)) flips++
  })
  t.ok(maxDiff < 1e-6, `max |diff| ${maxDiff.toExponential(2)} < 1e-6`)
  t.equal(flips, 0, 'no label flips')
  const labels = new Set(parity.probabilities.map(p => p >= metadata.threshold))
  t.equal(labels.size, 2, 'the fixture has both labels')
})

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x))

t.test('comparisons are in float32, as XGBoost makes them', async t => {
  // 16777218 is a float32; 16777217.5 is below it in doubles but rounds to it in float32, so XGBoost goes right.
  const model = parseXGBoostModel(stump(16777218))
  const x = new Float32Array([16777217.5])
  t.equal(x[0], 16777218)
  t.equal(model.predictProbability(x), sigmoid(1), 'right, as in float32')
  t.equal(model.predictProbability(new Float32Array([16777216])), sigmoid(-1), 'left below the threshold')
  // A threshold stored with more precision than float32 is rounded like XGBoost stores it.
  const rounded = parseXGBoostModel(stump(0.1 + 1e-12))
  t.equal(rounded.predictProbability(new Float32Array([0.1])), sigmoid(1), 'fround(0.1) is not below fround(threshold)')
})

t.test('missing values follow each node\'s default direction', async t => {
  t.equal(parseXGBoostModel(stump(5, { defaultLeft: true })).predictProbability(new Float32Array([NaN])), sigmoid(-1))
  t.equal(parseXGBoostModel(stump(5, { defaultLeft: false })).predictProbability(new Float32Array([NaN])), sigmoid(1))
})

t.test('base_score in the forms XGBoost writes, as a margin', async t => {
  t.equal(parseBaseScore('5E-1'), 0.5)
  t.equal(parseBaseScore('[5E-1]'), 0.5, 'XGBoost 3.x')
  t.equal(parseBaseScore('[2.5E-1]'), 0.25)
  const model = parseXGBoostModel(stump(5, { baseScore: '[2.5E-1]' }))
  t.ok(Math.abs(model.predictProbability(new Float32Array([10])) - sigmoid(Math.log(0.25 / 0.75) + 1)) < 1e-12)
  t.throws(() => parseBaseScore('[1E-1,2E-1]'), /multi-target/)
  t.throws(() => parseBaseScore('1.5'), /not a probability/)
})

t.test('unsupported models are refused at load time with a clear message', async t => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['not a model', { foo: 1 }, /no "learner"/],
    ['another objective', stump(1, { objective: 'reg:squarederror' }), /objective reg:squarederror is not supported/],
    ['categorical splits', stump(1, { extra: { split_type: [1, 0, 0], categories_nodes: [0] } }), /categorical splits/],
    ['children out of range', stump(1, { extra: { left_children: [7, -1, -1] } }), /children out of range/],
    ['a feature out of range', stump(1, { extra: { split_indices: [3, 0, 0] } }), /feature 3/],
  ]
  const multiclass = stump(1)
  multiclass.learner.learner_model_param.num_class = '3'
  cases.push(['multi-class', multiclass, /multi-class/])
  const dart = stump(1)
  dart.learner.gradient_booster.name = 'gblinear'
  cases.push(['a linear booster', dart, /booster gblinear is not supported/])
  for (const [name, json, message] of cases) {
    t.throws(() => parseXGBoostModel(json), { name: UnsupportedModelError.name, message }, name)
  }
})

t.test('the bundled model is the one its metadata describes', async t => {
  const raw = JSON.parse(readFileSync(join(modelDir, 'model.json'), 'utf8'))
  const model = parseXGBoostModel(raw)
  t.equal(model.numFeatures, metadata.features.length)
  t.same(model.featureNames, metadata.features)
  t.equal(model.numTrees, metadata.training.params.n_estimators)
})

t.test('large requests are evaluated in slices that let other work run, with the same predictions', async t => {
  const classifier = createEmbeddedClassifier(loadModel(modelDir))
  const rows = ROWS_PER_SLICE * 2 + 500
  const frame = { columns: parity.columns, data: Array.from({ length: rows }, (_, i) => parity.data[i % parity.data.length]) }
  let otherWorkRan = false
  const pending = classifier.predict(frame)
  setImmediate(() => { otherWorkRan = true })
  const predictions = await pending
  t.ok(otherWorkRan, 'the event loop ran other callbacks during the request')
  const expected = (await classifier.score(frame)).scores.map(p => p >= metadata.threshold ? 1 : 0)
  t.same(predictions, expected)
  t.equal(predictions.length, rows)
})
