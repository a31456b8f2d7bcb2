import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { projectRoot } from '../../project.js'
import { build, examples, splitFrame } from '../helper.js'

const { benign, attack } = examples
const frame = splitFrame([benign, attack, benign])
const flowsCsv = readFileSync(join(projectRoot(), 'examples', 'flows.csv'), 'utf8')

const invoke = (app: Awaited<ReturnType<typeof build>>, payload: unknown, contentType = 'application/json') =>
  app.inject({ method: 'POST', url: '/invocations', headers: { 'content-type': contentType }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) })

t.test('POST /invocations speaks MLflow 2.x: every input field, and CSV', async t => {
  const app = await build(t)
  const columnar = Object.fromEntries(frame.columns.map((c, i) => [c, frame.data.map(row => row[i])]))
  const bodies: Array<[string, unknown]> = [
    ['dataframe_split', { dataframe_split: frame }],
    ['dataframe_split without index', { dataframe_split: { columns: frame.columns, data: frame.data } }],
    ['dataframe_records', { dataframe_records: [benign, attack, benign] }],
    ['instances as records', { instances: [benign, attack, benign] }],
    ['inputs as columns', { inputs: columnar }],
    ['with params', { dataframe_split: frame, params: { anything: 1 } }],
  ]
  for (const [name, body] of bodies) {
    const res = await invoke(app, body, name === 'with params' ? 'application/json; charset=utf-8' : 'application/json')
    t.equal(res.statusCode, 200, name)
    t.same(res.json(), { predictions: [0, 1, 0] }, name)
  }
  const records = [{ ...benign, flow_duration: undefined }, attack]
  t.same((await invoke(app, { dataframe_records: records })).json(), { predictions: [0, 1] }, 'a key absent from a record is missing, as pandas fills NaN')
  const csv = await invoke(app, flowsCsv, 'text/csv')
  t.same(csv.json(), { predictions: [0, 1] }, 'CICFlowMeter CSV')
})

t.test('/invocations refuses as MLflow 2.x does, naming what to send', async t => {
  const app = await build(t, { MAX_ROWS: '2' })
  const frame = splitFrame([benign])
  const cases: Array<[string, unknown, string, number, RegExp]> = [
    ['a content-type format parameter', { dataframe_split: frame }, 'application/json; format=pandas-split', 415, /^Unrecognized content type parameters: format\..*dataframe_split/],
    ['another media type', { dataframe_split: frame }, 'text/plain', 415, /^unsupported content type "text\/plain": send "application\/json" with \{"dataframe_split": \{\.\.\.\}\} \(or dataframe_records, instances, inputs\), or "text\/csv"$/],
    ['two input fields', { dataframe_split: frame, instances: [benign] }, 'application/json', 400, /exactly one of dataframe_split, dataframe_records, instances, inputs; it has dataframe_split, instances/],
    ['no input field', { params: {} }, 'application/json', 400, /exactly one of .*; it has none/],
    ['a bare split frame', frame, 'application/json', 400, /exactly one of dataframe_split, .*; it has columns, index, data: wrap a split frame as \{"dataframe_split"/],
    ['an unknown field', { dataframe_split: frame, extra: 1 }, 'application/json', 400, /it has extra$/],
    ['columns of different lengths', { inputs: { a: [1, 2], b: [1] } }, 'application/json', 400, /inputs: column "b" has 1 values but "a" has 2/],
    ['a row of the wrong length', { dataframe_split: { columns: ['a', 'b'], data: [[1]] } }, 'application/json', 400, /row 0 has 1 values but there are 2 columns/],
    ['too many rows', { dataframe_records: [benign, benign, benign] }, 'application/json', 413, /3 rows exceed the limit of 2 rows/],
    ['too many rows as columns', { inputs: { flow_duration: [1, 2, 3] } }, 'application/json', 413, /3 rows exceed the limit of 2 rows/],
  ]
  for (const [name, body, type, status, message] of cases) {
    const res = await invoke(app, body, type)
    t.equal(res.statusCode, status, name)
    t.match(res.json(), { statusCode: status, message }, name)
  }
})

t.test('GET /ping and GET /version, as SageMaker and MLflow containers answer them', async t => {
  const app = await build(t)
  const ping = await app.inject('/ping')
  t.equal(ping.statusCode, 200)
  t.same(ping.json(), { status: 'ok', backend: 'local' })
  const version = await app.inject('/version')
  t.equal(version.statusCode, 200)
  t.match(version.json(), { service: /^ml-ids-api \d+\.\d+\.\d+/, model: 'cic-ids2018-xgb', model_version: String, backend: 'local' })
})

t.test('with API_KEYS set, /invocations needs a key as /api/predictions does; /ping and /version stay open', async t => {
  const app = await build(t, { API_KEYS: 'k1' })
  t.equal((await app.inject({ method: 'POST', url: '/api/predictions', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(frame) })).statusCode, 401)
  const refused = await invoke(app, { dataframe_split: frame })
  t.equal(refused.statusCode, 401, 'it classifies and announces: no key, no answer')
  t.equal(refused.json().code, 'UNAUTHORIZED')
  const allowed = await app.inject({ method: 'POST', url: '/invocations', headers: { 'content-type': 'application/json', authorization: 'Bearer k1' }, payload: JSON.stringify({ dataframe_split: frame }) })
  t.equal(allowed.statusCode, 200)
  t.equal((await app.inject('/ping')).statusCode, 200)
  t.equal((await app.inject('/version')).statusCode, 200)
})
