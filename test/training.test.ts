import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { projectRoot } from '../project.js'

const run = promisify(execFile)
const PYTHON = '/usr/bin/python3'
const TRAIN = join(projectRoot(), 'training', 'train.py')

// The offline tool needs Debian's python3-xgboost, python3-pandas and python3-sklearn; the service does not.
const toolchain = existsSync(PYTHON) && await run(PYTHON, ['-c', 'import xgboost, pandas, sklearn']).then(() => true, () => false)

/** Six capture days (01/03/2018 to 06/03/2018) of 30 flows; attacks are long flows with few packets, plus noise (a fixed sequence). */
function syntheticCsv () {
  const lines = ['Timestamp,Dst Port,Flow Duration,Tot Fwd Pkts,Init Fwd Win Byts,Label']
  let seed = 7
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647
  for (let day = 1; day <= 6; day++) {
    for (let i = 0; i < 30; i++) {
      const attack = random() < 0.5
      const duration = Math.round((attack ? 5000 : 1000) * (0.5 + random()))
      const packets = Math.round((attack ? 3 : 10) * (0.5 + random()))
      lines.push(`0${day}/03/2018 10:${String(i).padStart(2, '0')}:00,80,${duration},${packets},${day % 2 === 0 ? -1 : 8192},${attack ? 'Bot' : 'Benign'}`)
    }
  }
  const path = join(mkdtempSync(join(tmpdir(), 'ml-ids-train-')), 'flows.csv')
  writeFileSync(path, lines.join('\n') + '\n')
  return path
}

async function train (csv: string, out: string, ...options: string[]) {
  await run(PYTHON, [TRAIN, csv, '--name', 'm', '--out', out, '--params', 'max_depth=2,n_estimators=10,learning_rate=0.3,min_child_weight=1', ...options])
  const read = (file: string) => readFileSync(join(out, 'm', file), 'utf8')
  return { metadata: JSON.parse(read('metadata.json')), model: read('model.json'), parity: read('parity.json') }
}

t.test('training/train.py: --exclude-days, per-family cross-validation, an operating table, deterministic', { skip: !toolchain && 'no python3-xgboost' }, async t => {
  const csv = syntheticCsv()
  const dir = mkdtempSync(join(tmpdir(), 'ml-ids-models-'))
  const all = await train(csv, join(dir, 'all'))
  const again = await train(csv, join(dir, 'again'))
  t.equal(again.model, all.model, 'same input, same model.json')
  t.equal(again.parity, all.parity, 'same parity.json')
  t.same({ ...again.metadata, training: { ...again.metadata.training, command: '' } }, { ...all.metadata, training: { ...all.metadata.training, command: '' } })

  t.match(all.metadata.training, { rows: 180, excluded_days: [], selection: /parameters given/ })
  t.same(all.metadata.cv_metrics.by_family.map((f: { family: string, rows: number, days: number }) => [f.family, f.days]), [['Benign', 6], ['Bot', 6]])
  const table = all.metadata.operating_points as Array<{ threshold: number, recall: number, false_positive_rate: number }>
  t.ok(table.some(p => p.threshold === all.metadata.threshold), 'the model\'s threshold is in the table')
  for (let i = 1; i < table.length; i++) {
    t.ok(table[i].threshold > table[i - 1].threshold && table[i].recall <= table[i - 1].recall &&
      table[i].false_positive_rate <= table[i - 1].false_positive_rate, `ordered at ${i}`)
  }

  const without = await train(csv, join(dir, 'without'), '--exclude-days', '02/03/2018, 05/03/2018')
  t.match(without.metadata.training, { rows: 120, excluded_days: ['02/03/2018', '05/03/2018'], command: /--exclude-days 02\/03\/2018,05\/03\/2018/ })
  t.equal(without.metadata.cv_metrics.by_family[0].days, 4, 'the excluded days are gone')
  t.match(without.metadata.cv_metrics.measures, /^Out-of-fold predictions of 4-fold/, 'one fold per day when fewer than 5 are left')
  t.not(without.metadata.version, all.metadata.version, 'another model, another version')
  t.equal(without.metadata.training.data_sha256, all.metadata.training.data_sha256, 'from the same file')

  /** The tool's stderr when it fails; '' when it does not. */
  const refusal = (...options: string[]) => run(PYTHON, [TRAIN, csv, '--out', join(dir, 'bad'), ...options])
    .then(() => '', (err: { stderr: string }) => err.stderr)
  t.match(await refusal('--exclude-days', '2018-03-02'), /--exclude-days: '2018-03-02' is not dd\/mm\/YYYY/)
  const fiveDays = '02/03/2018,03/03/2018,04/03/2018,05/03/2018,06/03/2018'
  t.match(await refusal('--exclude-days', fiveDays), /needs rows from at least 2 capture days; 1 left/)
  t.match(await refusal('--params', 'max_depth=2'), /--params: n_estimators, learning_rate, min_child_weight missing/)
})
