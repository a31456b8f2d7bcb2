import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { csvToFrame, csvCell } from '../../input/csv.js'
import { snakeCase } from '../../classifier/features.js'
import { rowName } from '../../classifier/frame.js'
import { projectRoot } from '../../project.js'
import { build, examples, parity, post, splitFrame } from '../helper.js'

const flowsCsv = readFileSync(join(projectRoot(), 'examples', 'flows.csv'), 'utf8')
const flowsJson = readFileSync(join(projectRoot(), 'examples', 'flows.json'), 'utf8')
/** The original CICFlowMeter-V3 header of each snake_case column, from the example file. */
const V3 = new Map(flowsCsv.split('\r\n')[0].split(',').map(name => [snakeCase(name), name]))
const cell = (v: unknown) => v === null || v === undefined ? '' : String(v)

/** A frame written as CICFlowMeter writes CSV, with every quirk: BOM, CRLF, V3 headers, extra columns, the header again, blank lines. */
function cicflowmeterCsv (frame: { columns: string[], data: unknown[][] }, nonFinite: string[] = []) {
  const header = ['Flow ID', 'Src IP', ...frame.columns.map(c => V3.get(c) ?? c), 'Label'].join(',')
  const lines = frame.data.map((row, r) => [`10.0.0.${r}-192.0.2.1-1234-80-6`, `10.0.0.${r}`, ...row.map((v, i) => v === null && nonFinite.length > 0 ? nonFinite[(r + i) % nonFinite.length] : cell(v)), 'Benign'].join(','))
  const half = Math.ceil(lines.length / 2)
  return '\ufeff' + [header, ...lines.slice(0, half), header, '', ...lines.slice(half), ''].join('\r\n')
}

t.test('examples/flows.csv (CICFlowMeter-V3 headers) predicts what examples/flows.json does', async t => {
  const app = await build(t)
  const json = await post(app, flowsJson)
  const csv = await post(app, flowsCsv, 'text/csv')
  t.equal(csv.statusCode, 200)
  t.same(csv.json(), [0, 1])
  t.same(csv.json(), json.json())
})

t.test('every CSV quirk at once gives the predictions and scores of the same flows as pandas JSON', async t => {
  const app = await build(t)
  // The parity rows hold nulls (NaN and ±inf as pandas writes them): in the CSV they become Infinity, NaN or empty.
  const frame = { columns: parity.columns, data: parity.data }
  const csv = cicflowmeterCsv(frame, ['Infinity', 'NaN', '', '-Infinity', 'inf'])
  t.match(csv, /^\ufeffFlow ID,Src IP,.*Flow Byts\/s.*,Label\r\n/, 'a BOM, V3 headers and extra columns')
  t.match(csv, /Infinity/)
  t.match(csv, /\r\n\r\n/, 'a blank line')
  const fromJson = await post(app, frame)
  const fromCsv = await post(app, csv, 'text/csv; charset=utf-8')
  t.equal(fromCsv.statusCode, 200, fromCsv.body.slice(0, 200))
  t.same(fromCsv.json(), fromJson.json())
  const scoresCsv = await app.inject({ method: 'POST', url: '/api/scores', headers: { 'content-type': 'text/csv' }, payload: csv })
  const scoresJson = await app.inject({ method: 'POST', url: '/api/scores', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(frame) })
  t.same(scoresCsv.json(), scoresJson.json(), 'the same probabilities, bit for bit')
  scoresCsv.json().scores.forEach((p: number, i: number) => t.ok(Math.abs(p - parity.probabilities[i]) < 1e-5, `row ${i} as XGBoost scores it`, { diagnostic: false }))
})

t.test('LF line endings and snake_case headers too', async t => {
  const app = await build(t)
  const frame = splitFrame([examples.benign, examples.attack], { index: false })
  const csv = [frame.columns.join(','), ...frame.data.map(row => row.map(cell).join(','))].join('\n')
  t.same((await post(app, csv, 'text/csv')).json(), [0, 1])
})

t.test('CSV errors name the line of the file', async t => {
  const app = await build(t, { MAX_ROWS: '3' })
  const [header, benign, attack] = flowsCsv.split('\r\n')
  const at = header.split(',').indexOf('Flow Duration')
  const bad = attack.split(',').map((v, i) => i === at ? 'abc' : v).join(',')
  const cases: Array<[string, string, number, RegExp]> = [
    ['a non-numeric value', [header, benign, '', header, bad].join('\r\n'), 400, /^line 5, column "Flow Duration": "abc" is not a number$/],
    ['a short line', [header, benign, benign.split(',').slice(0, 3).join(',')].join('\n'), 400, /^line 3 has 3 values but the header has 83 columns$/],
    ['a broken quote', [header, benign, `"x"y,${attack}`].join('\n'), 400, /^line 3: Trailing quote on quoted field is malformed$/],
    ['missing features', 'Flow ID,Src IP\nx,10.0.0.1\n', 400, /missing features the model needs: flow_duration/],
    ['an empty file', '', 400, /the CSV is empty/],
    ['only a BOM', '\ufeff\r\n', 400, /the CSV is empty/],
    ['duplicate columns', 'a,b,a\n1,2,3\n', 400, /^line 1: duplicate column name "a"$/],
    ['more rows than MAX_ROWS', [header, benign, benign, benign, attack].join('\n'), 413, /more than 3 rows \(line 5\)/],
  ]
  for (const [name, body, status, message] of cases) {
    const res = await post(app, body, 'text/csv')
    t.equal(res.statusCode, status, name)
    t.match(res.json(), { statusCode: status, message }, name)
  }
  const latin = await post(app, flowsCsv, 'text/csv; charset=latin1')
  t.equal(latin.statusCode, 415, 'only UTF-8')
})

t.test('csvToFrame: cells as pandas reads them, and each row\'s line', async t => {
  t.same(['12', ' 3.5 ', '-1e3', '', 'NaN', 'Infinity', '-inf', 'NA', '0x10', '21/02/2018 10:15:06', '1_000'].map(csvCell),
    [12, 3.5, -1000, null, null, null, null, null, '0x10', '21/02/2018 10:15:06', '1_000'])
  const frame = await csvToFrame('\ufeffa,b\r\n1,x\r\n\r\na,b\r\n2,\r\n', { maxRows: 10 })
  t.same(frame, { columns: ['a', 'b'], data: [[1, 'x'], [2, null]] })
  t.equal(JSON.stringify(frame), '{"columns":["a","b"],"data":[[1,"x"],[2,null]]}', 'the lines are not serialised')
  t.equal(rowName(frame, 1), 'line 5')
  t.equal(rowName({ columns: [], data: [] }, 1), 'row 1')
  const multiline = await csvToFrame('a,b\n"two\nlines",1\n\n3,4\n', { maxRows: 10 })
  t.same(multiline.data, [['two\nlines', 1], [3, 4]])
  t.same([rowName(multiline, 0), rowName(multiline, 1)], ['line 2', 'line 5'], 'a line break inside quotes counts')
})

t.test('through a listening server: the content type in any spelling, the file as bytes', async t => {
  const app = await build(t)
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  for (const type of ['text/csv', 'Text/CSV; charset=UTF-8', 'text/csv;header=present']) {
    const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': type }, body: Buffer.from('\ufeff' + flowsCsv) })
    t.equal(res.status, 200, type)
    t.same(await res.json(), [0, 1], type)
  }
})

t.test('a CSV body over BODY_LIMIT is 413', async t => {
  const app = await build(t, { BODY_LIMIT: '1024' })
  t.equal((await post(app, flowsCsv, 'text/csv')).statusCode, 413)
})
