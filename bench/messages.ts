/**
 * The event-loop CPU a notified row costs before SNS: building its message (from the client's text of
 * the row, notifications/row-text.ts, or the parsed row written anew with JSON.stringify where that
 * text is unknown) and appending it to the journal, per row of 100-row requests of realistic flows
 * (bench/flows.ts), with JSON.parse of the same body for scale.
 *
 *   npm run bench:messages                  # 2,000 requests per case
 *   npm run bench:messages -- --requests 500
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { commandLine } from '../scripts/cli.js'
import { parseJsonBody } from '../input/body.js'
import { createJournal } from '../notifications/journal.js'
import { notificationsFor } from '../notifications/message.js'
import { rememberSource } from '../notifications/row-text.js'
import type { PandasSplitFrame } from '../schemas/predictions.js'
import { frameOf } from './flows.js'

const USAGE = `usage: npm run bench:messages -- [--requests <n>]

Event-loop CPU per notified row before SNS: building messages and appending them to the journal.

  --requests <n>   100-row requests per case (default 2000)
  -h, --help       this text
`
const { values } = commandLine('bench:messages', USAGE, { options: { requests: { type: 'string' } } })
const requests = Number(values.requests ?? 2000)
const ROWS = 100
const bodies = Array.from({ length: 8 }, (_, k) => JSON.stringify(frameOf(ROWS, k * ROWS)))
// Parsed as the service parses a body.
const frames = bodies.map(b => parseJsonBody(Buffer.from(b), { depthChecked: true }) as PandasSplitFrame)
const predictions = frames[0].data.map((_, i) => (i % 3 === 0 ? 1 : 0) as 0 | 1)
const context = { model: 'bench', requestId: 'b6e2a7a4-6c1f-4a58-9d43-3a7c2b8e1f00' }

/** CPU microseconds per row of `run`, over `requests` requests, after a warm-up. */
function measure (run: (k: number) => void): number {
  for (let k = 0; k < 200; k++) run(k)
  const start = process.cpuUsage()
  for (let k = 0; k < requests; k++) run(k)
  const used = process.cpuUsage(start)
  return (used.user + used.system) / requests / ROWS
}

const dir = mkdtempSync(join(tmpdir(), 'ml-ids-bench-messages-'))
const journal = createJournal({ dir, maxBytes: 1024 ** 4, segmentBytes: 16 * 1024 * 1024, fsync: false })
const results: Array<[string, number]> = []
results.push(['JSON.parse of the body (for scale)', measure(k => { JSON.parse(bodies[k % bodies.length]) })])
// The same frames as copies: no text is known for them, so their rows are written anew.
const copies = frames.map(f => ({ ...f }))
// A frame's row texts are found once and kept with it: a new copy with its text each time, as each request is.
const fresh = (k: number) => {
  const frame = { ...frames[k % frames.length] }
  rememberSource(frame, bodies[k % bodies.length])
  return frame
}
for (const grouping of ['request', 'row'] as const) {
  results.push([`messages, ${grouping} grouping`, measure(k => { notificationsFor(fresh(k), predictions, 'all', context, grouping) })])
  results.push([`messages, ${grouping} grouping, rows written anew (JSON.stringify)`, measure(k => { notificationsFor(copies[k % copies.length], predictions, 'all', context, grouping) })])
}
const grouped = frames.map(f => notificationsFor(f, predictions, 'all', context, 'request'))
const single = frames.map(f => notificationsFor(f, predictions, 'all', context, 'row'))
results.push(['journal append, request grouping', measure(k => { journal.ack(journal.append(grouped[k % grouped.length]) ?? []) })])
results.push(['journal append, row grouping', measure(k => { journal.ack(journal.append(single[k % single.length]) ?? []) })])
journal.close()
rmSync(dir, { recursive: true, force: true })

console.log(`| ${ROWS}-row requests, ${requests} per case | CPU µs per row |`)
console.log('| --- | --- |')
for (const [name, us] of results) console.log(`| ${name} | ${us.toFixed(2)} |`)
