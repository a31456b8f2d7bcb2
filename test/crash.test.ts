import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { projectRoot } from '../project.js'
import { examples, splitFrame } from './helper.js'
import { rowsOf } from './support/journal.js'
import { startServer } from './support/server-process.js'
import { snsServer } from './support/sns.js'

/**
 * Crash safety through real processes: the server is SIGKILLed at random moments under mixed bodies
 * (pretty JSON with CRLF, compact JSON, CSV, escaped keys; main thread and worker pool) while SNS
 * fails, hangs or answers; a last start with SNS healthy must publish every row any run answered.
 */
// Every run sends the four body shapes in turn; grouping (run % 2) and threads (run % 3) make six
// combinations, so 12 kills land twice in each.
const KILLS = 12
const csv = readFileSync(join(projectRoot(), 'examples', 'flows.csv'), 'utf8')
const frame = splitFrame([examples.benign, examples.attack, examples.benign])

function body (k: number): { text: string, type: string } {
  switch (k % 4) {
    case 0: return { text: JSON.stringify(frame, null, 2).replace(/\n/g, '\r\n'), type: 'application/json' }
    case 1: return { text: JSON.stringify(frame), type: 'application/json' }
    case 2: return { text: csv, type: 'text/csv' }
    default: return { text: JSON.stringify(frame).replace('"data"', '"d\\u0061ta"'), type: 'application/json' }
  }
}

t.test(`${KILLS} kill -9 at random moments: every answered row is confirmed by SNS after a restart`, async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ml-ids-crash-'))
  let healthy = false
  const sns = await snsServer(t, {
    // While crashing: some calls refused, the rest slow, so notifications are in every state at a kill.
    call: () => !healthy && Math.random() < 0.4 ? { status: 503, code: 'ServiceUnavailable' } : undefined,
    delayMs: 30,
  })
  const env = (run: number) => ({
    AWS_SNS_PREDICTIONS_TOPIC: 'arn:aws:sns:eu-west-1:123456789012:ml-ids-predictions',
    AWS_SNS_HOST: sns.url,
    AWS_ACCESS_KEY: 'AKIDEXAMPLE',
    AWS_SECRET_KEY: 'secret',
    NOTIFY_DATA_DIR: dataDir,
    NOTIFY_RETRY_BASE_MS: '5',
    NOTIFY_RETRY_MAX_MS: '200',
    NOTIFY_GROUPING: run % 2 === 0 ? 'request' : 'row',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info', // the listening line is an info log
    ...(run % 3 === 0 ? { WORKERS: '1', WORKER_MIN_BYTES: '0' } : { WORKERS: '0' }),
  })
  const began = Date.now()
  const answered = new Set<string>()
  let requests = 0
  for (let run = 0; run < KILLS; run++) {
    const server = startServer(env(run), { coverage: false })
    const url = await server.listening
    if (run === 0) t.comment(`first start after ${Math.round((Date.now() - began) / 1000)} s`)
    // Requests keep going until the kill, which lands at a random moment among them.
    const state = { killed: false }
    const client = (async () => {
      for (let k = 0; !state.killed; k++) {
        const { text, type } = body(run + k)
        try {
          const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': type }, body: text })
          const predictions = await res.json() as number[]
          requests++
          if (res.status === 200) predictions.forEach((_, i) => answered.add(`${res.headers.get('x-request-id')}:${i}`))
        } catch {
          return // the connection died with the process: that request was not answered
        }
      }
    })()
    await new Promise(resolve => setTimeout(resolve, 50 + Math.random() * 250))
    server.child.kill('SIGKILL')
    state.killed = true
    await once(server.child, 'exit')
    await client
  }
  t.comment(`kills done after ${Math.round((Date.now() - began) / 1000)} s`)
  t.ok(answered.size > KILLS, `${answered.size} rows answered in ${requests} requests across ${KILLS} kills`)
  // The last start, SNS healthy: what the journal holds goes out by itself.
  healthy = true
  const last = startServer(env(KILLS))
  t.teardown(() => { last.child.kill('SIGKILL') })
  const lastUrl = await last.listening
  const confirmed = () => new Set(rowsOf(sns.accepted))
  for (const started = Date.now(); Date.now() - started < 40_000;) {
    const now = confirmed()
    if ([...answered].every(row => now.has(row))) break
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.comment(`confirmed after ${Math.round((Date.now() - began) / 1000)} s`)
  const all = confirmed()
  const missing = [...answered].filter(row => !all.has(row))
  if (missing.length > 0) t.comment(`${missing.length} missing, e.g. ${missing.slice(0, 3).join(' ')}; stats ${await (await fetch(`${lastUrl}/api/notifications/stats`)).text()}; files ${readdirSync(dataDir).join(' ')}`)
  t.same(missing, [], 'rows answered ⊆ rows SNS confirmed')
  last.child.kill('SIGTERM')
  await once(last.child, 'exit')
})
