import t from 'tap'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { byFamily, evaluateCsv, readLabelledFlows, recordEvaluation, score } from '../../scripts/evaluate.js'
import { build, examples, metadata } from '../helper.js'

t.test('reads CICFlowMeter-V3 headers and values as pandas would send them', async t => {
  const path = join(mkdtempSync(join(tmpdir(), 'ml-ids-csv-')), 'flows.csv')
  writeFileSync(path, [
    'Dst Port,Flow Byts/s,Down/Up Ratio,Timestamp,Label',
    '22,Infinity,1,14/02/2018 10:00:00,SSH-Bruteforce',
    'Dst Port,Flow Byts/s,Down/Up Ratio,Timestamp,Label',
    '80,NaN,,14/02/2018 10:00:01,Benign',
  ].join('\n'))
  const { columns, rows, labels } = await readLabelledFlows(path)
  t.same(columns, ['dst_port', 'flow_byts_s', 'down_up_ratio', 'timestamp'])
  t.same(rows, [[22, null, 1, '14/02/2018 10:00:00'], [80, null, null, '14/02/2018 10:00:01']])
  t.same(labels, ['SSH-Bruteforce', 'Benign'], 'a repeated header line is skipped')
})

t.test('scores: accuracy, precision, recall, false-positive rate', async t => {
  t.match(score([1, 1, 0, 0, 0], [1, 0, 1, 0, 0]), {
    accuracy: 0.6, precision: 0.5, recall: 0.5, false_positive_rate: 0.3333, rows: 5, confusion: { tp: 1, fn: 1, fp: 1, tn: 2 },
  })
})

t.test('per family: rows, flagged as attacks and their share, sorted by label', async t => {
  t.same(byFamily(['SSH-Bruteforce', 'Benign', 'SSH-Bruteforce', 'Benign', 'Benign'], [1, 0, 0, 1, 0]), [
    { family: 'Benign', rows: 3, flagged_as_attack: 1, rate: 0.3333 },
    { family: 'SSH-Bruteforce', rows: 2, flagged_as_attack: 1, rate: 0.5 },
  ])
})

/** A labelled CSV in CICFlowMeter-V3 spelling: the example flows, twice each, under the given labels. */
function labelledCsv (labels: Record<'benign' | 'attack', string>) {
  const features = Object.keys(examples.benign)
  const header = [...features.map(f => f.replace('flow_byts_s', 'Flow Byts/s')), 'Label']
  const line = (kind: 'benign' | 'attack') => [...features.map(f => examples[kind][f] ?? 'NaN'), labels[kind]].join(',')
  const path = join(mkdtempSync(join(tmpdir(), 'ml-ids-csv-')), 'labelled.csv')
  writeFileSync(path, [header.join(','), line('benign'), line('attack'), line('attack'), line('benign')].join('\r\n'))
  return path
}

t.test('evaluates a labelled CSV through a listening service: overall and per family', async t => {
  const app = await build(t)
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const report = await evaluateCsv(labelledCsv({ benign: 'Benign', attack: 'DoS attacks-Hulk' }), url)
  t.match(report, {
    model: { backend: 'local', name: metadata.name, version: metadata.version, training: /training\/train\.py/ },
    data: 'labelled.csv',
    accuracy: 1,
    recall: 1,
    false_positive_rate: 0,
    rows: 4,
    confusion: { tp: 2, fp: 0, tn: 2, fn: 0 },
  })
  t.same(report.by_family, [
    { family: 'Benign', rows: 2, flagged_as_attack: 0, rate: 0 },
    { family: 'DoS attacks-Hulk', rows: 2, flagged_as_attack: 2, rate: 1 },
  ])
})

t.test('records an evaluation in a model card, keeping its description and naming another model', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ml-ids-card-'))
  const card = join(dir, 'metadata.json')
  writeFileSync(card, JSON.stringify({ name: 'm', version: 'v1', unseen: { measures: 'what it measures', accuracy: 0 } }))
  const report = {
    model: { backend: 'local', name: 'm', version: 'v2', training: 'train.py --exclude-days 14/02/2018' },
    data: 'h.csv',
    ...score([1, 0], [1, 1]),
    by_family: byFamily(['A', 'Benign'], [1, 1]),
  }
  recordEvaluation(card, 'unseen', report, 'npm run evaluate -- h.csv --write-metadata --key unseen')
  recordEvaluation(card, 'holdout_metrics', { ...report, model: { ...report.model, version: 'v1' } }, 'npm run evaluate -- h.csv --write-metadata')
  const written = JSON.parse(readFileSync(card, 'utf8'))
  t.match(written.unseen, {
    accuracy: 0.5,
    false_positive_rate: 1,
    rows: 2,
    data: 'h.csv',
    command: 'npm run evaluate -- h.csv --write-metadata --key unseen',
    measures: 'what it measures',
    model: { name: 'm', version: 'v2', training: 'train.py --exclude-days 14/02/2018' },
    by_family: [{ family: 'A', rate: 1 }, { family: 'Benign', rate: 1 }],
  })
  t.notOk('confusion' in written.unseen)
  t.notOk('model' in written.holdout_metrics, 'the card\'s own model is not named again')
  t.notOk('measures' in written.holdout_metrics, 'no description is made up')
})
