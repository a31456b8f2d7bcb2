import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readLabelledFlows, score } from '../scripts/evaluate.js'

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
