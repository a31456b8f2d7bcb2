/**
 * The longest the service's own event loop is held while a valid JSON body near BODY_LIMIT is sent and
 * answered on each route that takes flows: the largest gap between 1 ms timer ticks, over a real
 * socket (service and client in one process, WORKERS=1), the worst of 5 runs. Unlike bench/abuse.ts's
 * /health poller, it does not count the CPU a worker thread takes from a crowded machine.
 *
 *   npm run build:tools && node dist/bench/route-hold.js
 */
import { createApp } from '../app.js'
import { frameOf } from './flows.js'
import { holdMeter } from './service.js'

const app = createApp({ env: { WORKERS: '1', LOG_LEVEL: 'warn' } })
const url = await app.listen({ port: 0, host: '127.0.0.1' })
const frame = frameOf(10_000)
const split = JSON.stringify(frame)
const records = JSON.stringify({ dataframe_records: frame.data.slice(0, 3000).map(row => Object.fromEntries(frame.columns.map((c, i) => [c, row[i]]))) })
const shapes: Array<[string, string, string]> = [
  ['10,000 flows, split', '/api/predictions', split],
  ['the same', '/api/scores', split],
  ['the same as dataframe_split', '/invocations', `{"dataframe_split":${split}}`],
  ['3,000 dataframe_records', '/invocations', records],
  ['10,000 flows', '/api/explanations', split],
  ['1,000 flows', '/api/explanations', JSON.stringify(frameOf(1000))],
]
const rows = []
for (const [shape, path, body] of shapes) {
  let worst = 0
  let status = ''
  for (let run = 0; run < 5; run++) {
    const meter = holdMeter()
    const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    const text = await res.text()
    worst = Math.max(worst, meter.stop())
    status = `${res.status} ${/"code":"([A-Z_]+)"/.exec(text)?.[1] ?? ''}`.trim()
  }
  rows.push({ shape, path, MB: (body.length / 1e6).toFixed(1), status, worstGapMs: Math.round(worst) })
}
await app.close()
console.table(rows)
