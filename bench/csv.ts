/**
 * CSV parsing: two libraries measured on a 6 MB CICFlowMeter file, then the service itself, CSV
 * against the same flows as JSON: time and the longest the event loop was held.
 *
 *   npm run bench:csv
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import { parse as parseStream } from 'csv-parse'
import { parse as parseSync } from 'csv-parse/sync'
import Papa from 'papaparse'
import { createApp } from '../app.js'
import { csvToFrame } from '../input/csv.js'
import { snakeCase } from '../classifier/features.js'
import { projectRoot } from '../project.js'
import { frameOf } from './flows.js'
import { holdMeter } from './service.js'

const TARGET_BYTES = 6 * 1024 * 1024
const RUNS = 5

// The original CICFlowMeter-V3 headers, from the example file.
const v3 = new Map(readFileSync(join(projectRoot(), 'examples', 'flows.csv'), 'utf8').split('\r\n')[0].split(',').map(name => [snakeCase(name), name]))
function csvOf (frame: { columns: string[], data: unknown[][] }): string {
  const lines = [frame.columns.map(c => v3.get(c) ?? c).join(',')]
  for (const row of frame.data) lines.push(row.map(v => v === null ? 'Infinity' : String(v)).join(','))
  return lines.join('\r\n') + '\r\n'
}

const perRow = csvOf(frameOf(1000)).length / 1000
const rows = Math.floor(TARGET_BYTES / perRow)
const frame = frameOf(rows)
const csv = csvOf(frame)
const json = JSON.stringify(frame)

/** Runs `fn` RUNS times: the best wall time, and the longest the event loop was held meanwhile (ms). */
async function measure (fn: () => unknown) {
  let best = Infinity
  let worst = 0
  for (let i = 0; i < RUNS; i++) {
    const meter = holdMeter()
    await new Promise(resolve => setTimeout(resolve, 5))
    meter.restart()
    const started = performance.now()
    await fn()
    best = Math.min(best, performance.now() - started)
    await new Promise(resolve => setTimeout(resolve, 5))
    worst = Math.max(worst, meter.stop())
  }
  return { best_ms: Math.round(best), longest_hold_ms: Math.round(worst) }
}

/** csv-parse fed 64 KB slices, yielding in between (its streaming API parses each write synchronously). */
async function csvParseSliced (text: string) {
  const rows: string[][] = []
  const parser = parseStream({ skip_empty_lines: true, on_record: (record: string[]) => { rows.push(record); return undefined } })
  for (let from = 0; from < text.length; from += 64 * 1024) {
    parser.write(text.slice(from, from + 64 * 1024))
    await yieldToEventLoop()
  }
  await new Promise<void>(resolve => parser.end(resolve))
  return rows
}

/** papaparse row by row, pausing every 250 rows to yield, as input/csv.ts did. */
async function papaSliced (text: string) {
  const rows: string[][] = []
  await new Promise<void>(resolve => {
    Papa.parse<string[]>(text, {
      step: (results, parser) => {
        if (rows.push(results.data) % 250 === 0) {
          parser.pause()
          setImmediate(() => parser.resume())
        }
      },
      complete: () => resolve(),
    })
  })
  return rows
}

const results: Record<string, unknown> = { rows, csv_bytes: csv.length, json_bytes: json.length }
results.csv_parse_whole = await measure(() => parseSync(csv, { skip_empty_lines: true }))
results.papaparse_whole = await measure(() => Papa.parse(csv, { skipEmptyLines: true }))
results.csv_parse_sliced = await measure(() => csvParseSliced(csv))
results.papaparse_sliced = await measure(() => papaSliced(csv))
results.csvToFrame = await measure(() => csvToFrame(csv, { maxRows: rows }))
results.json_parse = await measure(() => JSON.parse(json))

// The service, over loopback: the same flows as CSV and as JSON.
const app = createApp({ env: { BODY_LIMIT: String(4 * TARGET_BYTES), MAX_ROWS: String(rows), NOTIFY: 'none', LOG_LEVEL: 'silent' } })
const url = await app.listen({ port: 0, host: '127.0.0.1' })
for (const [name, type, body] of [['service_json', 'application/json', json], ['service_csv', 'text/csv', csv]] as const) {
  results[name] = await measure(async () => {
    const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': type }, body })
    const answer = await res.json() as unknown[]
    if (!res.ok || answer.length !== rows) throw new Error(`${name}: ${res.status}`)
  })
}
await app.close()
console.log(JSON.stringify(results, null, 2))
