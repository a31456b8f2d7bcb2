/**
 * Issue 20's abusive bodies against the service as `npm start` runs it (compiled, its own process):
 * for each input path and shape at BODY_LIMIT, the answer and the worst event-loop hold it caused,
 * seen from outside as the slowest `GET /health` answered while the body was handled (a client
 * polls /health back to back). Then predictions' throughput alone and while the operational endpoints
 * are flooded (/metrics on PORT and on METRICS_PORT, /health on PORT, past PROBE_QUEUE_MAX too).
 *
 *   npm run build:tools && node dist/bench/abuse.js [bodies|flood]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, openSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { projectRoot } from '../project.js'
import { frameOf } from './flows.js'
import { freePort, untilReady } from './service.js'

const LIMIT = 6 * 1024 * 1024
const children = new Set<ChildProcess>()
process.on('exit', () => { for (const child of children) child.kill() })

async function startService (env: NodeJS.ProcessEnv) {
  const port = await freePort()
  const child = spawn(process.execPath, [join(projectRoot(), 'dist', 'server.js')], {
    env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', NOTIFY: 'none', NOTIFY_DATA_DIR: mkdtempSync(join(tmpdir(), 'ml-ids-abuse-')), ...env },
    stdio: ['ignore', openSync('/dev/null', 'w'), 'inherit'],
  })
  children.add(child)
  const url = `http://127.0.0.1:${port}`
  await untilReady(url, 'abuse', 300)
  return { child, url }
}

/** Sends `body` while polling /health; the answer, and the slowest /health meanwhile (ms). */
async function probe (url: string, path: string, type: string, body: string) {
  const state = { polling: true }
  let worst = 0
  const poller = (async () => {
    while (state.polling) {
      const started = performance.now()
      await fetch(`${url}/health`).then(res => res.arrayBuffer())
      worst = Math.max(worst, performance.now() - started)
    }
  })()
  await new Promise(resolve => setTimeout(resolve, 20))
  const started = performance.now()
  // A body refused while it is still being sent may end in a closed connection rather than its answer.
  const answer = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': type }, body })
    .then(async res => ({ status: String(res.status), text: await res.text() }), () => ({ status: 'closed', text: '' }))
  const ms = performance.now() - started
  state.polling = false
  await poller
  return { status: answer.status, code: /"code":"([A-Z_]+)"/.exec(answer.text)?.[1] ?? '', ms: Math.round(ms), worstHealthMs: Math.round(worst) }
}

const fill = (line: string, header: string) => header + line.repeat(Math.floor((LIMIT - header.length - 1024) / line.length))

function csvOf (frame: { columns: string[], data: unknown[][] }, rows: number) {
  return [frame.columns.join(','), ...frame.data.slice(0, rows).map(row => row.map(v => v ?? '').join(','))].join('\n') + '\n'
}

async function bodies () {
  const { child, url } = await startService({ WORKERS: '1' })
  const frame = frameOf(10_000)
  const header = frame.columns.join(',') + '\n'
  const maxCsv = csvOf(frame, 10_000)
  const maxJson = JSON.stringify(frame)
  const explainJson = JSON.stringify(frameOf(1000))
  const recordsJson = JSON.stringify({ dataframe_records: frame.data.slice(0, 3000).map(row => Object.fromEntries(frame.columns.map((c, i) => [c, row[i]]))) })
  const shapes: Array<[string, string, string, string]> = [
    ['CSV: header + blank lines', '/api/predictions', 'text/csv', fill('\n', header)],
    ['CSV: header + whitespace lines', '/api/predictions', 'text/csv', fill(' \r\n', header)],
    ['CSV: header repeated', '/api/predictions', 'text/csv', fill(header, header)],
    ['CSV: a header of commas', '/api/predictions', 'text/csv', fill(',', 'a')],
    ['CSV: one row of commas after the header', '/api/scores', 'text/csv', fill(',', header + '1')],
    ['CSV: comment-like lines (# ...)', '/api/predictions', 'text/csv', fill('# comment\n', header)],
    [`CSV: 10,000 flows (${(maxCsv.length / 1e6).toFixed(1)} MB)`, '/api/scores', 'text/csv', maxCsv],
    ['JSON: 2M empty rows', '/api/scores', 'application/json', `{"columns":["a"],"data":[${'[],'.repeat(2_000_000)}[]]}`],
    ['JSON: 2M empty records', '/invocations', 'application/json', `{"dataframe_records":[${'{},'.repeat(1_900_000)}{}]}`],
    ['JSON: 3M numbers in one list', '/api/scores', 'application/json', `{"columns":["a"],"data":[${'1,'.repeat(3_000_000)}1]}`],
    ['JSON: brackets, 6 MB deep', '/api/scores', 'application/json', '['.repeat(LIMIT - 16)],
    ['JSON: one 6 MB string cell', '/api/scores', 'application/json', `{"columns":["a"],"data":[["${'x'.repeat(LIMIT - 64)}"]]}`],
    // A valid body at BODY_LIMIT on each route that takes flows (WORKER_MIN_BYTES and up go to the pool where the route has one).
    [`JSON: 10,000 flows (${(maxJson.length / 1e6).toFixed(1)} MB)`, '/api/predictions', 'application/json', maxJson],
    ['JSON: the same', '/api/scores', 'application/json', maxJson],
    ['JSON: the same as MLflow dataframe_split', '/invocations', 'application/json', `{"dataframe_split":${maxJson}}`],
    [`JSON: 3,000 MLflow records (${(recordsJson.length / 1e6).toFixed(1)} MB)`, '/invocations', 'application/json', recordsJson],
    ['JSON: 10,000 flows to explain (over EXPLAIN_MAX_ROWS)', '/api/explanations', 'application/json', maxJson],
    ['JSON: 1,000 flows to explain', '/api/explanations', 'application/json', explainJson],
  ]
  const rows = []
  for (const [shape, path, type, body] of shapes) {
    const results = []
    for (let run = 0; run < 3; run++) results.push(await probe(url, path, type, body))
    const worst = results.reduce((a, b) => b.worstHealthMs > a.worstHealthMs ? b : a)
    rows.push({ shape, path, MB: (Buffer.byteLength(body) / 1e6).toFixed(1), status: `${worst.status} ${worst.code}`.trim(), ms: worst.ms, worstHealthMs: worst.worstHealthMs })
  }
  child.kill()
  console.table(rows)
}

async function flood () {
  const body = JSON.stringify(frameOf(1))
  const rows = []
  const floods = [
    ['/metrics on PORT', '/metrics', 50, {}],
    ['/health on PORT', '/health', 50, {}],
    ['/health on PORT', '/health', 400, {}],
    ['/metrics on METRICS_PORT', '/metrics', 50, { METRICS_PORT: String(await freePort()) }],
  ] as const
  for (const [name, path, connections, env] of floods) {
    const { child, url } = await startService({ WORKERS: '1', ...env })
    const floodUrl = `${'METRICS_PORT' in env ? `http://127.0.0.1:${env.METRICS_PORT}` : url}${path}`
    const predictions = () => autocannon({ url: `${url}/api/predictions`, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: 10, duration: 5 })
    await predictions()
    const alone = await predictions()
    const [during, scrapes] = await Promise.all([predictions(), autocannon({ url: floodUrl, connections, duration: 5 })])
    rows.push({ flood: name, connections, 'predictions alone (req/s)': Math.round(alone.requests.average), 'during flood (req/s)': Math.round(during.requests.average), kept: `${Math.round(100 * during.requests.average / alone.requests.average)}%`, 'p99 during (ms)': during.latency.p99, 'flood answered 200 (req/s)': Math.round(scrapes['2xx'] / 5), 'flood answered 503 (req/s)': Math.round(scrapes.non2xx / 5) })
    child.kill()
  }
  console.table(rows)
}

// `node dist/bench/abuse.js bodies` (or `flood`): that part only.
if (process.argv[2] !== 'flood') await bodies()
if (process.argv[2] !== 'bodies') await flood()
process.exit(0)
