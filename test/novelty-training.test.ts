import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { projectRoot } from '../project.js'
import { loadModel } from '../classifier/model.js'

const run = promisify(execFile)
const PYTHON = '/usr/bin/python3'
const TRAIN = join(projectRoot(), 'training', 'train.py')
const NOVELTY = join(projectRoot(), 'training', 'novelty.py')
const toolchain = existsSync(PYTHON) && await run(PYTHON, ['-c', 'import xgboost, pandas, sklearn']).then(() => true, () => false)

/** Six capture days of 40 flows (attacks: long flows with few packets), and a holdout of a seventh day without timestamps. */
function synthetic () {
  let seed = 11
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647
  const flow = (attack: boolean, day: number) => {
    const duration = Math.round((attack ? 5000 : 1000) * (0.5 + random()))
    const packets = Math.round((attack ? 3 : 10) * (0.5 + random()))
    return `${duration},${packets},${day % 2 === 0 ? -1 : 8192},${attack ? 'Bot' : 'Benign'}`
  }
  const lines = ['Timestamp,Dst Port,Flow Duration,Tot Fwd Pkts,Init Fwd Win Byts,Label']
  for (let day = 1; day <= 6; day++) {
    for (let i = 0; i < 40; i++) lines.push(`0${day}/03/2018 10:${String(i).padStart(2, '0')}:00,80,${flow(random() < 0.4, day)}`)
  }
  const holdout = ['Flow Duration,Tot Fwd Pkts,Init Fwd Win Byts,Label']
  for (let i = 0; i < 60; i++) holdout.push(flow(i % 3 === 0, 7))
  const dir = mkdtempSync(join(tmpdir(), 'ml-ids-novelty-train-'))
  writeFileSync(join(dir, 'flows.csv'), lines.join('\n') + '\n')
  writeFileSync(join(dir, 'holdout.csv'), holdout.join('\n') + '\n')
  return dir
}

t.test('training/novelty.py: a detector beside the model, threshold by day-grouped CV, deterministic, read by the service exactly', { skip: !toolchain && 'no python3-sklearn' }, async t => {
  const dir = synthetic()
  const csv = join(dir, 'flows.csv')
  await run(PYTHON, [TRAIN, csv, '--name', 'm', '--out', join(dir, 'models'), '--exclude-days', '06/03/2018',
    '--params', 'max_depth=2,n_estimators=10,learning_rate=0.3,min_child_weight=1'])
  const modelDir = join(dir, 'models', 'm')
  const fit = async () => {
    await run(PYTHON, [NOVELTY, csv, '--model-dir', modelDir, '--holdout', join(dir, 'holdout.csv')])
    return readFileSync(join(modelDir, 'novelty.json'), 'utf8')
  }
  const first = await fit()
  t.equal(await fit(), first, 'same input, same novelty.json')
  const card = JSON.parse(first)
  const metadata = JSON.parse(readFileSync(join(modelDir, 'metadata.json'), 'utf8'))
  t.equal(card.model_version, metadata.version)
  t.same(card.features, metadata.features)
  t.match(card.fitted_on, { excluded_days: ['06/03/2018'], rows: metadata.training.benign_rows })
  t.match(card.threshold_selection, /^5-fold cross-validation grouped by capture day/)
  t.ok(Math.abs(card.cv.benign_flagged - 0.1) <= 0.02, `about 10% of out-of-fold benign rows flagged (${card.cv.benign_flagged})`)
  t.equal(card.cv.threshold, card.threshold)
  t.ok(card.cv.attacks_caught_or_flagged >= card.cv.attacks_predicted, 'flagging only adds to what is caught')
  t.match(card.holdout_days_unseen, { data: 'holdout.csv', by_family: [{ family: 'Benign', rows: 40 }, { family: 'Bot', rows: 20 }] })
  t.same(Object.keys(card.drift_reference.features), metadata.features, 'a drift reference per feature')

  // The service reads it and scores as scikit-learn does, here with -1 windows and missing values.
  const model = loadModel(modelDir)
  const parity = JSON.parse(readFileSync(join(modelDir, 'novelty-parity.json'), 'utf8'))
  const off = parity.data.filter((row: Array<number | null>, i: number) => {
    const x = Float32Array.from(row, (v, f) => v === null || (v < 0 && !metadata.preprocessing.negative_allowed.includes(metadata.features[f])) ? NaN : v)
    return Math.abs(model.novelty!.score(x) - parity.scores[i]) > 1e-6
  })
  t.same(off, [], 'every parity row within 1e-6')
})
