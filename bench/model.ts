/**
 * The embedded model's speed: rows/s for batches of 1, 100 and 10,000 rows, in the engine alone and
 * through HTTP on loopback, and the worst event-loop delay while a maximum-size request is served;
 * then the same for explanations (TreeSHAP), up to EXPLAIN_MAX_ROWS. First, CPU per row of the tree walks alone:
 * the classifier's and the unfamiliar-flow detector's.
 *
 *   npm run bench:model [-- --seconds 2]
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { cpus } from 'node:os'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createApp } from '../app.js'
import { createEmbeddedClassifier } from '../classifier/embedded.js'
import { defaultModelDir, loadModel } from '../classifier/model.js'
import { fillFeatures, planFeatures } from '../classifier/features.js'
import { createDriftMonitor } from '../classifier/drift.js'
import { commandLine } from '../scripts/cli.js'

const USAGE = `usage: npm run bench:model -- [--seconds <s>]

The embedded model's speed, alone and through HTTP, predictions and explanations.

  --seconds <s>    per measurement (default 2)
  -h, --help       this text
`
const { values } = commandLine('bench:model', USAGE, { options: { seconds: { type: 'string', default: '2' } } })
const seconds = Number(values.seconds)

// Synthetic flows (the parity fixture's), at the precision CICFlowMeter writes (about 7 digits).
const parity = JSON.parse(readFileSync(join(defaultModelDir(), 'parity.json'), 'utf8')) as { columns: string[], data: unknown[][] }
parity.data = parity.data.map(row => row.map(v => typeof v === 'number' ? Number(v.toPrecision(7)) : v))
const frameOf = (rows: number) => ({
  columns: parity.columns,
  index: Array.from({ length: rows }, (_, i) => i),
  data: Array.from({ length: rows }, (_, i) => parity.data[i % parity.data.length]) as Array<Array<number | string | null>>,
})

/** Runs `fn` repeatedly for about `seconds`, returning calls per second. */
async function rate (fn: () => unknown) {
  let calls = 0
  const started = performance.now()
  while (performance.now() - started < seconds * 1000) {
    await fn()
    calls++
  }
  return calls / ((performance.now() - started) / 1000)
}

const results: Record<string, unknown> = { machine: `${cpus().length} x ${cpus()[0]?.model}`, node: process.version }

const model = loadModel()
// CPU per row of the tree walks alone, on preprocessed rows: the classifier's trees, and the unfamiliar-flow detector's.
{
  const plan = planFeatures(parity.columns, model.metadata.features, model.metadata.preprocessing)
  const rows = parity.data.map((row, r) => {
    const x = new Float32Array(model.metadata.features.length)
    fillFeatures(row, r, parity.columns, plan, x)
    return x
  })
  /** CPU microseconds per call of `fn` over every row, for about `seconds`. */
  const cpuPerRow = (fn: (x: Float32Array) => number) => {
    let calls = 0
    let sink = 0
    const wall = performance.now()
    const cpu = process.cpuUsage()
    while (performance.now() - wall < seconds * 1000) {
      for (const x of rows) sink += fn(x)
      calls += rows.length
    }
    const used = process.cpuUsage(cpu)
    if (Number.isNaN(sink)) throw new Error('unreachable')
    return Math.round((used.user + used.system) / calls * 1000) / 1000
  }
  results.classifier_cpu_us_per_row = cpuPerRow(x => model.booster.predictProbability(x))
  if (model.novelty !== undefined) {
    results.novelty_cpu_us_per_row = cpuPerRow(x => (model.novelty as NonNullable<typeof model.novelty>).score(x))
    // Counting a row for drift (DRIFT_WINDOW_ROWS), which every row classified on the main thread or in a worker pays.
    const reference = model.novelty.driftReference
    if (reference !== undefined) {
      const drift = createDriftMonitor(reference, model.metadata.features, 10000)
      results.drift_cpu_us_per_row = cpuPerRow(x => { drift.observe(x); return 0 })
    }
  }
}
const classifier = createEmbeddedClassifier(model)
for (const rows of [1, 100, 10000]) {
  const frame = frameOf(rows)
  const perSecond = await rate(() => classifier.score(frame))
  results[`engine_rows_per_s_batch_${rows}`] = Math.round(perSecond * rows)
}
{
  // score() with and without the unfamiliarity score: what the detector adds to a request's work.
  const frame = frameOf(10000)
  const bare = createEmbeddedClassifier({ ...model, novelty: undefined })
  results.engine_rows_per_s_batch_10000_without_detector = Math.round(await rate(() => bare.score(frame)) * 10000)
}
for (const [rows, top] of [[1, undefined], [100, undefined], [1000, undefined], [1000, 5]] as const) {
  const frame = frameOf(rows)
  const perSecond = await rate(() => classifier.explain(frame, { top }))
  results[`engine_explain_rows_per_s_batch_${rows}${top === undefined ? '' : `_top_${top}`}`] = Math.round(perSecond * rows)
}

const app = createApp({ env: {} })
const url = await app.listen({ port: 0, host: '127.0.0.1' })
for (const rows of [1, 100, 10000]) {
  const body = JSON.stringify(frameOf(rows))
  const perSecond = await rate(async () => {
    const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': 'application/json; format=pandas-split' }, body })
    if (!res.ok) throw new Error(`${res.status} ${await res.text()}`)
    await res.arrayBuffer()
  })
  results[`http_rows_per_s_batch_${rows}`] = Math.round(perSecond * rows)
}
for (const [rows, top] of [[1, undefined], [100, undefined], [1000, undefined], [1000, 5]] as const) {
  const body = JSON.stringify(frameOf(rows))
  const perSecond = await rate(async () => {
    const res = await fetch(`${url}/api/explanations${top === undefined ? '' : `?top=${top}`}`, { method: 'POST', headers: { 'content-type': 'application/json; format=pandas-split' }, body })
    if (!res.ok) throw new Error(`${res.status} ${await res.text()}`)
    await res.arrayBuffer()
  })
  results[`http_explain_rows_per_s_batch_${rows}${top === undefined ? '' : `_top_${top}`}`] = Math.round(perSecond * rows)
}

// The largest request the defaults accept: rows until the body reaches the 6 MB limit.
const limit = app.config.BODY_LIMIT
const perRow = JSON.stringify(frameOf(1000)).length / 1000
let rows = Math.min(app.config.MAX_ROWS, Math.floor(limit / perRow))
let body = JSON.stringify(frameOf(rows))
while (body.length > limit) body = JSON.stringify(frameOf(--rows))
const histogram = monitorEventLoopDelay({ resolution: 1 })
/** The worst event-loop delay over 5 requests, and the answer's size. */
async function worstDelay (path: string, body: string) {
  let worst = 0
  let answer = 0
  for (let i = 0; i < 5; i++) {
    histogram.reset()
    histogram.enable()
    const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json; format=pandas-split' }, body })
    answer = (await res.arrayBuffer()).byteLength
    histogram.disable()
    if (!res.ok) throw new Error(`max-size request to ${path}: ${res.status}`)
    worst = Math.max(worst, histogram.max / 1e6)
  }
  return { worst_event_loop_delay_ms: Math.round(worst * 10) / 10, response_bytes: answer }
}
results.max_request = { rows, bytes: body.length, ...await worstDelay('/api/predictions', body) }
const explainRows = Math.min(app.config.MAX_ROWS, app.config.EXPLAIN_MAX_ROWS)
const explainBody = JSON.stringify(frameOf(explainRows))
results.max_explain_request = { rows: explainRows, bytes: explainBody.length, ...await worstDelay('/api/explanations', explainBody) }
results.max_explain_request_top_5 = { rows: explainRows, ...await worstDelay('/api/explanations?top=5', explainBody) }
await app.close()
console.log(JSON.stringify(results, null, 2))
