import t, { type Test } from 'tap'
import { Value } from '@sinclair/typebox/value'
import { ErrorResponse } from '../../schemas/common.js'
import { build, examples, metadata, post, splitFrame, PANDAS_SPLIT } from '../helper.js'

const { benign, attack } = examples

function assertError (t: Test, res: { statusCode: number, json: () => any }, status: number, pattern: RegExp) {
  t.equal(res.statusCode, status, `answers ${status}`)
  const body = res.json()
  t.ok(Value.Check(ErrorResponse, body), 'in the ErrorResponse shape')
  t.equal(body.statusCode, status)
  t.match(body.message, pattern)
}

t.test('200: one prediction per row, in order, as pandas writes the frame', async t => {
  const app = await build(t)
  const flows = [benign, attack, benign, attack]
  // What pandas writes: an index, string timestamps with escaped slashes, nulls for NaN and ±inf.
  const body = JSON.stringify(splitFrame(flows, { extra: { timestamp: '21/02/2018 10:15:06', dst_port: 80, protocol: 6 } }))
    .replace(/\//g, '\\/')
  t.match(body, /21\\\/02\\\/2018/, 'the body escapes slashes as pandas does')
  const res = await post(app, body)
  t.equal(res.statusCode, 200)
  t.same(res.json(), [0, 1, 0, 1])
  t.match(res.headers['content-type'], /^application\/json/)
})

t.test('200 without index, with nulls, columns in another order, and original CICFlowMeter headers', async t => {
  const app = await build(t)
  const flow: Record<string, unknown> = { ...attack, flow_byts_s: null, flow_pkts_s: null }
  const reversed = Object.fromEntries(Object.entries(flow).reverse())
  const frame = splitFrame([reversed], { index: false })
  t.notOk('index' in frame)
  t.same((await post(app, frame)).json(), [1])
  const original = { ...frame, columns: frame.columns.map(c => c === 'flow_byts_s' ? 'Flow Byts/s' : c === 'down_up_ratio' ? 'Down/Up Ratio' : c) }
  t.same((await post(app, original)).json(), [1], 'original headers are matched after snake_case normalisation')
})

t.test('zero rows answers []', async t => {
  const app = await build(t)
  const res = await post(app, { columns: Object.keys(benign), index: [], data: [] })
  t.equal(res.statusCode, 200)
  t.same(res.json(), [])
})

t.test('content types: the pandas-split type in any case and spacing, and plain JSON', async t => {
  const app = await build(t)
  const frame = splitFrame([attack])
  for (const type of [PANDAS_SPLIT, 'application/json', 'Application/JSON ; Format=Pandas-Split ; charset=UTF-8', 'application/json;charset=utf-8', 'application/json; format="pandas-split"']) {
    const res = await post(app, frame, type)
    t.equal(res.statusCode, 200, type)
  }
})

t.test('415 for other or missing content types, naming the supported ones', async t => {
  const app = await build(t)
  const frame = splitFrame([attack])
  for (const type of [null, 'text/plain', 'application/x-www-form-urlencoded', 'application/json; format=records', 'application/json; charset=latin1', 'text/csv; charset=latin1', 'text/tab-separated-values']) {
    const res = await post(app, frame, type)
    assertError(t, res, 415, /application\/json; format=pandas-split/)
  }
})

t.test('400 for bodies that are not a usable split frame', async t => {
  const app = await build(t)
  const columns = Object.keys(benign)
  const row = columns.map(c => benign[c])
  const cases: Array<[string, unknown, RegExp]> = [
    ['empty body', '', /empty/i],
    ['unparsable JSON', '{"columns": [', /not valid JSON/],
    ['records orientation', [benign], /body must be object/],
    ['columns orientation', { flow_duration: { 0: 1 } }, /must have required property 'columns'/],
    ['data missing', { columns }, /must have required property 'data'/],
    ['a column name that is not a string', { columns: [1, ...columns.slice(1)], data: [row] }, /columns\[0\] must be string/],
    ['a cell that is an object', { columns, data: [row.map((v, i) => i === 3 ? { x: 1 } : v)] }, new RegExp(`row 0, column "${columns[3]}" must be a number, a string or null`)],
    ['a row that is not a list', { columns, data: [row, 5] }, /row 1 must be array/],
    ['duplicate column names', { columns: [...columns, 'flow_duration'], data: [[...row, 1]] }, /duplicate column names: flow_duration/],
    ['a row of the wrong length', { columns, data: [row, row.slice(1), row] }, /row 1 has 67 values but there are 68 columns/],
    ['index and data of different lengths', { columns, index: [0, 1], data: [row] }, /index has 2 labels but data has 1 rows/],
    ['missing features', { columns: columns.slice(2), data: [row.slice(2)] }, /missing features the model needs: flow_duration, tot_fwd_pkts$/],
    ['two columns naming one feature', { columns: [...columns, 'Flow Duration'], data: [[...row, 1]] }, /columns "flow_duration" and "Flow Duration" both name feature flow_duration/],
    ['a non-numeric value', { columns, data: [row, row.map((v, i) => i === 5 ? 'abc' : v)] }, new RegExp(`row 1, column "${columns[5]}": "abc" is not a number`)],
  ]
  for (const [name, body, message] of cases) {
    t.test(name, async t => assertError(t, await post(app, body), 400, message))
  }
})

t.test('413 above the body size and row limits, configurable', async t => {
  const app = await build(t, { BODY_LIMIT: '4096', MAX_ROWS: '3' })
  const big = splitFrame(Array(10).fill(benign))
  assertError(t, await post(app, big), 413, /too large|exceeds|limit/i)
  const small = { columns: ['flow_duration'], data: [[1], [2], [3], [4]] }
  assertError(t, await post(app, small), 413, /4 rows exceed the limit of 3 rows/)
  t.equal((await post(app, { ...small, data: small.data.slice(0, 3) })).statusCode, 400, 'three rows pass the row limit')
})

t.test('default limits: 6 MB bodies and 10,000 rows', async t => {
  const app = await build(t)
  t.equal(app.config.BODY_LIMIT, 6 * 1024 * 1024)
  t.equal(app.config.MAX_ROWS, 10000)
  t.equal(metadata.threshold > 0 && metadata.threshold < 1, true)
})

t.test('an MLflow scoring body gets a 400 naming the expected frame and pointing to /invocations', async t => {
  const app = await build(t)
  const frame = splitFrame([attack])
  const bodies = [{ dataframe_split: frame }, { dataframe_records: [attack] }, { instances: [attack] }, { inputs: { flow_duration: [1] } }]
  for (const body of bodies) {
    for (const url of ['/api/predictions', '/api/scores']) {
      const res = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: body })
      assertError(t, res, 400, new RegExp(`MLflow scoring body \\(\\{"${Object.keys(body)[0]}": \\.\\.\\.\\}\\): ${url} takes the pandas split frame itself, \\{"columns".*POST their body unchanged to /invocations`))
    }
  }
})

t.test('errors elsewhere share the shape: 404 and 405-ish routes', async t => {
  const app = await build(t)
  assertError(t, await app.inject({ method: 'GET', url: '/nope' }), 404, /no route GET \/nope/)
  assertError(t, await app.inject({ method: 'GET', url: '/api/predictions' }), 404, /no route GET \/api\/predictions/)
})

t.test('column lists that would collide as joined strings are told apart', async t => {
  const app = await build(t)
  t.equal((await post(app, { columns: ['a\u0000a'], data: [[1]] })).statusCode, 400, 'missing features, but no duplicate')
  const res = await post(app, { columns: ['a', 'a'], data: [[1, 2]] })
  t.match(res.json().message, /duplicate column names: a/)
})
