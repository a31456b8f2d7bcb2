import t from 'tap'
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ModelLoadError } from '../../errors.js'
import { loadModel } from '../../classifier/model.js'
import { build, modelDir } from '../helper.js'

/** A copy of the bundled model with one file changed. */
function brokenModel (file: string, change: (text: string) => string) {
  const dir = mkdtempSync(join(tmpdir(), 'ml-ids-model-'))
  cpSync(modelDir, dir, { recursive: true })
  writeFileSync(join(dir, file), change(readFileSync(join(dir, file), 'utf8')))
  return dir
}

t.test('the bundled model loads', async t => {
  const model = loadModel()
  t.equal(model.metadata.name, 'cic-ids2018-xgb')
  t.equal(model.dir, modelDir)
})

t.test('the model card: day-grouped cross-validation per family, an operating table, both holdout evaluations', async t => {
  const { metadata } = loadModel()
  const cv = metadata.cv_metrics
  t.ok(cv?.measures?.includes('grouped by capture day'), 'the cross-validation says what it measures')
  const families = cv?.by_family ?? []
  t.equal(families.reduce((sum, f) => sum + f.rows, 0), metadata.training.rows, 'every training row is in one family')
  t.equal(families.filter(f => f.family !== 'Benign').reduce((sum, f) => sum + f.rows, 0), metadata.training.attack_rows)
  const benign = families.find(f => f.family === 'Benign')
  t.equal(benign?.rate, cv?.false_positive_rate, 'Benign\'s flagged share is the false-positive rate')
  const flaggedAttacks = families.filter(f => f.family !== 'Benign').reduce((sum, f) => sum + f.flagged_as_attack, 0)
  t.equal(Math.round(flaggedAttacks / Number(metadata.training.attack_rows) * 10000) / 10000, cv?.recall, 'families add up to the recall')
  for (const f of families) {
    t.equal(f.rate, Math.round(f.flagged_as_attack / f.rows * 10000) / 10000, `${f.family}: rate = flagged / rows`)
    t.ok((f.rows_family_unseen ?? 0) <= f.rows && (f.days ?? 0) >= 1, `${f.family}: days and unseen rows`)
  }

  const table = metadata.operating_points ?? []
  t.ok(table.length >= 19, 'thresholds from 0.05 to 0.95 at least')
  t.equal(table[0].threshold, 0.05)
  t.equal(table.at(-1)?.threshold, 0.95)
  for (const [i, point] of table.entries()) {
    t.ok(point.recall >= 0 && point.recall <= 1 && point.false_positive_rate >= 0 && point.false_positive_rate <= 1, `point ${i} in [0, 1]`)
    if (i > 0) {
      t.ok(point.threshold > table[i - 1].threshold, `threshold rises at ${i}`)
      t.ok(point.recall <= table[i - 1].recall && point.false_positive_rate <= table[i - 1].false_positive_rate, `no rise at ${i}`)
    }
  }
  const own = table.find(p => p.threshold === metadata.threshold)
  t.same(own, { threshold: metadata.threshold, recall: cv?.recall, false_positive_rate: cv?.false_positive_rate },
    'the model\'s threshold is in the table, at the cross-validated figures')

  t.same(metadata.training.excluded_days, [], 'the bundled model is trained on every training row')
  t.match(metadata.holdout_metrics, { measures: /251 rows from those same two days.*18 holdout rows are identical/s })
  const unseen = metadata.holdout_metrics_days_unseen
  t.match(unseen, { measures: /Not this model/, model: { training: /--exclude-days 14\/02\/2018,20\/02\/2018/ } })
  t.not(unseen?.model?.version, metadata.version, 'a model of its own version')
  for (const evaluation of [metadata.holdout_metrics, unseen]) {
    t.same(evaluation?.by_family?.map(f => f.family), ['Benign', 'DDoS attacks-LOIC-HTTP', 'FTP-BruteForce', 'SSH-Bruteforce'])
    t.equal(evaluation?.by_family?.reduce((sum, f) => sum + f.rows, 0), evaluation?.rows)
  }
})

t.test('a missing or malformed model fails with a message naming the file', async t => {
  const cases: Array<[string, string, RegExp]> = [
    ['missing directory', '/nonexistent/model', /cannot read \/nonexistent\/model\/metadata\.json: ENOENT/],
    ['metadata not JSON', brokenModel('metadata.json', () => '{'), /metadata\.json is not valid JSON/],
    ['metadata without features', brokenModel('metadata.json', text => JSON.stringify({ ...JSON.parse(text), features: undefined })), /metadata\.json is malformed: \/features/],
    ['threshold out of range', brokenModel('metadata.json', text => JSON.stringify({ ...JSON.parse(text), threshold: 2 })), /metadata\.json is malformed: \/threshold/],
    ['recall above 1 in the operating table', brokenModel('metadata.json', text => {
      const m = JSON.parse(text)
      return JSON.stringify({ ...m, operating_points: [{ threshold: 0.5, recall: 1.5, false_positive_rate: 0.1 }] })
    }), /metadata\.json is malformed: \/operating_points\/0\/recall/],
    ['an operating table out of order', brokenModel('metadata.json', text => {
      const m = JSON.parse(text)
      return JSON.stringify({ ...m, operating_points: [...m.operating_points].reverse() })
    }), /metadata\.json is malformed: \/operating_points\/1: thresholds must rise/],
    ['false alarms rising with the threshold', brokenModel('metadata.json', text => {
      const m = JSON.parse(text)
      const points = [{ threshold: 0.1, recall: 0.9, false_positive_rate: 0.1 }, { threshold: 0.2, recall: 0.8, false_positive_rate: 0.2 }]
      return JSON.stringify({ ...m, operating_points: points })
    }), /\/operating_points\/1: thresholds must rise and recall and false-positive rate must not/],
    ['features disagreeing with the model', brokenModel('metadata.json', text => {
      const m = JSON.parse(text)
      return JSON.stringify({ ...m, features: [...m.features.slice(1), m.features[0]] })
    }), /disagree on the features/],
    ['a feature too few', brokenModel('metadata.json', text => {
      const m = JSON.parse(text)
      return JSON.stringify({ ...m, features: m.features.slice(1) })
    }), /reads 68 features but .* lists 67/],
    ['model not JSON', brokenModel('model.json', text => text.slice(0, 100)), /model\.json is not valid JSON/],
    ['unsupported objective', brokenModel('model.json', text => text.replace('"binary:logistic"', '"multi:softprob"')), /model\.json: objective multi:softprob is not supported/],
  ]
  for (const [name, dir, message] of cases) {
    t.throws(() => loadModel(dir), { name: ModelLoadError.name, message }, name)
  }
})

t.test('the app refuses to start on a bad MODEL_DIR, naming it', async t => {
  await t.rejects(build(t, { MODEL_DIR: '/nonexistent/model' }), /cannot read \/nonexistent\/model\/metadata\.json/)
})

t.test('MODEL_DIR picks the model the app serves', async t => {
  const dir = brokenModel('metadata.json', text => JSON.stringify({ ...JSON.parse(text), name: 'renamed' }))
  const app = await build(t, { MODEL_DIR: dir })
  t.equal((await app.inject('/api/model')).json().name, 'renamed')
})
