import t from 'tap'
import { createDriftMonitor, createDriftTally } from '../../classifier/drift.js'
import { build, examples, metadata, splitFrame } from '../helper.js'

// Two features: `a` with deciles 1..9 (ten equal bins), `b` always 5 in training, never missing.
const reference = {
  rows: 1000,
  which: 'synthetic',
  features: {
    a: { edges: [1, 2, 3, 4, 5, 6, 7, 8, 9], shares: Array(10).fill(0.1), missing: 0 },
    b: { edges: [5], shares: [0, 1], missing: 0 },
  },
}
const row = (a: number, b: number) => Float32Array.of(a, b)

t.test('PSI is near 0 for traffic like the training data and large for a moved feature, per feature', async t => {
  const drift = createDriftMonitor(reference, ['a', 'b'], 1000)
  for (let i = 0; i < 1000; i++) drift.observe(row((i % 10) + 0.5, 5))
  const still = drift.summary()
  t.ok(still.rows >= 900 && still.rows <= 1000, `the window holds 0.9-1.0 of its rows (${still.rows})`)
  t.ok(still.psi.every(f => f.psi < 0.01), 'both features stable')
  // `a` moves into its top decile; `b` stays.
  for (let i = 0; i < 1000; i++) drift.observe(row(9.5, 5))
  const moved = Object.fromEntries(drift.summary().psi.map(f => [f.feature, f.psi]))
  t.ok(moved.a > 0.25, `a shifted (${moved.a})`)
  t.ok(moved.b < 0.01, `b did not (${moved.b})`)
  t.ok(Math.abs(moved.a - 0.9 * Math.log(1 / 0.1) - 9 * (0.0001 - 0.1) * Math.log(0.0001 / 0.1)) < 1e-9,
    'the old rows have left the window: exactly the PSI of all rows in one bin')
})

t.test('counts tallied elsewhere (a worker thread) merge into the window as the same rows observed here would', async t => {
  const here = createDriftMonitor(reference, ['a', 'b'], 1000)
  const merged = createDriftMonitor(reference, ['a', 'b'], 1000)
  const tally = createDriftTally(reference, ['a', 'b'])
  for (let i = 0; i < 250; i++) {
    const x = row(i % 7, i % 3 === 0 ? NaN : 5)
    here.observe(x)
    tally.observe(x)
  }
  const taken = tally.take()
  t.equal(taken.rows, 250)
  merged.merge(taken)
  t.same(merged.summary(), here.summary())
  t.same(tally.take().rows, 0, 'taking starts afresh')
})

t.test('missing values have a bin of their own', async t => {
  const drift = createDriftMonitor(reference, ['a', 'b'], 100)
  for (let i = 0; i < 100; i++) drift.observe(row((i % 10) + 0.5, NaN))
  const psi = Object.fromEntries(drift.summary().psi.map(f => [f.feature, f.psi]))
  t.ok(psi.b > 1, `b missing where it never was (${psi.b})`)
  t.ok(psi.a < 0.01)
})

t.test('a reference without one of the model\'s features, or with shares that do not fit its edges, is refused', async t => {
  t.throws(() => createDriftMonitor(reference, ['a', 'c'], 10), /no feature c/)
  t.throws(() => createDriftMonitor({ ...reference, features: { ...reference.features, b: { edges: [5], shares: [1], missing: 0 } } }, ['a', 'b'], 10), /1 shares for 1 edges/)
})

t.test('GET /api/drift and /metrics: one PSI per model feature over the rows this process classified', async t => {
  const app = await build(t, { DRIFT_WINDOW_ROWS: '50' })
  const empty = (await app.inject('/api/drift')).json()
  t.match(empty, { available: true, window_rows: 50, rows: 0 })
  // The median benign training flow, over and over: nothing like the training spread.
  const frame = splitFrame(Array(40).fill(examples.benign))
  const res = await app.inject({ method: 'POST', url: '/api/scores', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(frame) })
  t.equal(res.statusCode, 200)
  const body = (await app.inject('/api/drift')).json()
  t.equal(body.rows, 40)
  t.equal(body.features.length, metadata.features.length, 'every model feature')
  t.same(body.features.map((f: { psi: number }) => f.psi), body.features.map((f: { psi: number }) => f.psi).sort((x: number, y: number) => y - x), 'largest first')
  t.ok(body.features[0].psi > 0.25, 'one value repeated is a shifted distribution')
  const metrics = (await app.inject('/metrics')).body
  const series = metrics.split('\n').filter(line => line.startsWith('mlids_feature_drift_psi{'))
  t.equal(series.length, metadata.features.length, 'one series per model feature, no more')
  t.match(metrics, /\nmlids_drift_window_rows 40\n/)
  t.equal((await app.inject('/api/drift')).statusCode, 200)
})

t.test('rows classified in a worker thread count towards the window', async t => {
  const app = await build(t, { DRIFT_WINDOW_ROWS: '1000', WORKERS: '1', WORKER_MIN_BYTES: '0' })
  const frame = splitFrame(Array(40).fill(examples.benign))
  const res = await app.inject({ method: 'POST', url: '/api/predictions', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(frame) })
  t.equal(res.statusCode, 200)
  const body = (await app.inject('/api/drift')).json()
  t.equal(body.rows, 40)
  t.ok(body.features[0].psi > 0.25)
})

t.test('DRIFT_WINDOW_ROWS=0: not measured, said so, and no metric', async t => {
  const app = await build(t, { DRIFT_WINDOW_ROWS: '0' })
  t.match((await app.inject('/api/drift')).json(), { available: false, reason: /DRIFT_WINDOW_ROWS=0/ })
  t.notMatch((await app.inject('/metrics')).body, /mlids_feature_drift_psi/)
})
