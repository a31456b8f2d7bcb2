import t, { type Test } from 'tap'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { createApp } from '../app.js'
import { examples, splitFrame, PANDAS_SPLIT } from './helper.js'
import { json, loopback } from './support/loopback.js'

/**
 * Issue 20: what a body costs follows its work, not its socket, through a real listening server.
 */

type App = ReturnType<typeof createApp>

async function listening (t: Test, env: NodeJS.ProcessEnv): Promise<{ app: App, port: number }> {
  const app = createApp({ env })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as AddressInfo).port }
}

/** A raw client: sends `head` and `body`, collects what comes back until the server closes. */
function rawPost (port: number, path: string, body: string, headers: Record<string, string> = {}): { socket: Socket, text: () => string, closed: Promise<void> } {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  let text = ''
  socket.on('data', chunk => { text += chunk })
  const closed = once(socket, 'close').then(() => {})
  const lines = Object.entries({ host: 'x', 'content-type': PANDAS_SPLIT, 'content-length': String(Buffer.byteLength(body)), ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('')
  socket.write(`POST ${path} HTTP/1.1\r\n${lines}\r\n${body}`)
  return { socket, text: () => text, closed }
}

async function until (check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  throw new Error(`timed out waiting for ${what}`)
}

const rows = (n: number) => JSON.stringify(splitFrame(Array(n).fill(examples.benign)))

t.test('a disconnected client\'s body stays reserved until its work ends; its work is told to stop', async t => {
  const body = rows(40)
  const size = Buffer.byteLength(body)
  const { app, port } = await listening(t, { WORKERS: '0', MAX_BODY_BYTES_IN_FLIGHT: String(Math.floor(size * 2.5)) })
  // A classification that cannot stop at once (as one running in a worker thread): it ends when released.
  const signals: AbortSignal[] = []
  let release!: () => void
  const released = new Promise<void>(resolve => { release = resolve })
  const classifier = app.classifier as { predict: (frame: unknown, opts?: { signal?: AbortSignal }) => Promise<number[]> }
  classifier.predict = async (_frame, opts) => {
    signals.push(opts!.signal!)
    await released
    return [0]
  }

  const gone = [rawPost(port, '/api/predictions', body), rawPost(port, '/api/predictions', body)]
  await until(() => signals.length === 2, 'both classifications to start')
  for (const client of gone) client.socket.destroy()
  await until(() => signals.every(signal => signal.aborted), 'the work to be told its clients went')
  t.ok(signals.every(signal => signal.aborted), 'each classification\'s signal aborted when its client went')
  t.equal(app.bodyBytesInFlight(), 2 * size, 'their bytes stay reserved while the work runs')

  const third = await fetch(`http://127.0.0.1:${port}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body })
  t.equal(third.status, 503, 'a third body does not fit beside the work of the two that left')
  t.equal(third.headers.get('retry-after'), '5')
  t.match(await third.json(), { code: 'OVERLOADED' })

  release()
  await until(() => app.bodyBytesInFlight() === 0, 'the reservations to be released')
  t.equal(app.bodyBytesInFlight(), 0, 'released once the work ended')
  const after = await fetch(`http://127.0.0.1:${port}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: rows(1) })
  t.equal(after.status, 200, 'and new bodies are taken again')
})

t.test('an explanation for a client that went stops between slices', async t => {
  const { app, port } = await listening(t, { WORKERS: '0', EXPLAIN_MAX_ROWS: '1000' })
  let started = false
  let heard = false
  let stoppedWith: unknown
  const classifier = app.classifier as { explain: (frame: unknown, opts?: { top?: number, signal?: AbortSignal }) => Promise<unknown[]> }
  const explain = classifier.explain.bind(classifier)
  classifier.explain = async (frame, opts) => {
    started = true
    opts!.signal!.addEventListener('abort', () => { heard = true })
    try {
      return await explain(frame, opts)
    } catch (err) {
      stoppedWith = err
      throw err
    }
  }
  const client = rawPost(port, '/api/explanations', rows(1000))
  // Leave as soon as the body is on its way: the explanation starts and then has nobody to answer.
  await new Promise(resolve => setTimeout(resolve, 30))
  client.socket.destroy()
  await until(() => app.bodyBytesInFlight() === 0, 'the reservation to be released')
  if (started) {
    t.ok(heard, 'the work heard that its client went')
    t.match(stoppedWith, { code: 'CLIENT_GONE' }, 'it stopped with the client gone, not by finishing')
  } else {
    t.pass('the client went before the explanation started, which then never ran')
  }
})

t.test('the worker pool\'s queue is bounded (503 + Retry-After), and a body whose client went leaves it', async t => {
  const body = rows(20)
  // Threads start with the first pooled body and take a while: meanwhile, bodies wait in the queue.
  const { app, port } = await listening(t, { WORKERS: '1', WORKER_MIN_BYTES: '1024', WORKER_QUEUE_MAX: '1', PRESSURE_RETRY_AFTER_S: '2' })
  const pool = app.workerPool!
  const leaving = rawPost(port, '/api/predictions', body)
  await until(() => pool.queued().entries === 1, 'the first body to wait for a thread')
  leaving.socket.destroy()
  await until(() => pool.queued().entries === 0, 'the body of the client that went to leave the queue')
  t.same(pool.queued(), { entries: 0, bytes: 0 }, 'its body left the queue')
  await until(() => app.bodyBytesInFlight() === 0, 'its reservation to be released')

  const first = fetch(`http://127.0.0.1:${port}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body })
  await until(() => pool.queued().entries === 1 || pool.workers().length > 0, 'the next body to wait')
  if (pool.workers().length > 0) {
    t.pass('the thread started before the queue could be observed full: nothing to refuse')
  } else {
    const second = await fetch(`http://127.0.0.1:${port}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body })
    t.equal(second.status, 503, 'past WORKER_QUEUE_MAX: refused')
    t.equal(second.headers.get('retry-after'), '2')
    t.match(await second.json(), { code: 'OVERLOADED', message: /worker threads are busy/ })
  }
  const answered = await first
  t.equal(answered.status, 200, 'the waiting body is answered once a thread is up')
  t.same(await answered.json(), Array(20).fill(0))
})

t.test('/api/scores and /invocations keep the pool\'s guarantees: the body reserved while queued, cancelled when its client goes, 503 past the queue', async t => {
  const split = rows(20)
  for (const [path, body] of [['/api/scores', split], ['/invocations', `{"dataframe_split":${split}}`]] as const) {
    // A fresh app each time: its thread is not up yet, so the first body waits in the queue.
    const { app, port } = await listening(t, { WORKERS: '1', WORKER_MIN_BYTES: '1024', WORKER_QUEUE_MAX: '1', PRESSURE_RETRY_AFTER_S: '2' })
    const pool = app.workerPool!
    const leaving = rawPost(port, path, body, { 'content-type': 'application/json' })
    await until(() => pool.queued().entries === 1, `${path}: the body to wait for a thread`)
    t.equal(app.bodyBytesInFlight(), Buffer.byteLength(body), `${path}: its bytes reserved while it waits`)
    leaving.socket.destroy()
    await until(() => pool.queued().entries === 0, `${path}: the body of the client that went to leave the queue`)
    await until(() => app.bodyBytesInFlight() === 0, `${path}: its reservation to be released`)
    t.same(pool.queued(), { entries: 0, bytes: 0 }, `${path}: its body left the queue`)

    const ask = () => fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    const first = ask()
    await until(() => pool.queued().entries === 1 || pool.workers().length > 0, `${path}: the next body to wait`)
    if (pool.workers().length === 0) {
      const second = await ask()
      t.equal(second.status, 503, `${path}: past WORKER_QUEUE_MAX, refused`)
      t.equal(second.headers.get('retry-after'), '2')
    }
    const answered = await first
    t.equal(answered.status, 200, `${path}: the waiting body is answered once a thread is up`)
    const answer = await answered.json() as { predictions: number[], scores?: number[] }
    t.same(answer.predictions, Array(20).fill(0))
    if (path === '/api/scores') t.equal(answer.scores?.length, 20)
    await app.close()
  }
})

t.test('Expect: 100-continue is answered by the guard before 100 Continue', async t => {
  const { port } = await listening(t, { WORKERS: '0', API_KEYS: 'k1' })
  const body = rows(1)
  const refused = rawPost(port, '/api/predictions', '', { expect: '100-continue', 'content-length': String(Buffer.byteLength(body)) })
  await refused.closed
  t.match(refused.text(), /^HTTP\/1\.1 401 /, 'the first answer is the 401')
  t.notMatch(refused.text(), /100 Continue/, 'no 100 Continue was sent')

  const welcome = rawPost(port, '/api/predictions', '', { expect: '100-continue', 'content-length': String(Buffer.byteLength(body)), authorization: 'Bearer k1', connection: 'close' })
  await until(() => welcome.text().length > 0, 'an interim answer')
  t.match(welcome.text(), /^HTTP\/1\.1 100 Continue\r\n\r\n$/, 'a welcome client gets 100 Continue first')
  welcome.socket.write(body)
  await welcome.closed
  t.match(welcome.text(), /HTTP\/1\.1 200 OK[\s\S]*\r\n\r\n\[0\]$/, 'then its answer')
})

t.test('a SageMaker answer over SAGEMAKER_MAX_ANSWER_BYTES is refused 502 without being read whole', async t => {
  const MB = 1024 * 1024
  const huge = 50 * MB
  const sent: number[] = []
  // 50 MB of answer, written as fast as the socket takes it, declared or chunked; counts what left.
  const flood = (declared: boolean) => (_req: unknown, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json', ...(declared ? { 'content-length': String(huge) } : {}) })
    const chunk = Buffer.from('0,'.repeat(32 * 1024))
    let written = 0
    res.on('close', () => sent.push(written))
    const pump = () => {
      while (!res.destroyed && written < huge) {
        written += chunk.length
        if (!res.write(chunk)) return res.once('drain', pump)
      }
      if (!res.destroyed) res.end()
    }
    pump()
  }
  const sagemaker = await loopback(t, flood(true))
  const { port } = await listening(t, {
    AWS_REGION: 'eu-west-1',
    AWS_SAGEMAKER_ENDPOINT: 'ml-ids-prod',
    AWS_SAGEMAKER_HOST: sagemaker.url,
    AWS_ACCESS_KEY: 'AKIDEXAMPLE',
    AWS_SECRET_KEY: 'secret',
    SAGEMAKER_INPUT_FORMAT: 'pandas-split',
    SAGEMAKER_MAX_ATTEMPTS: '1',
    SAGEMAKER_MAX_ANSWER_BYTES: String(64 * 1024),
  })
  for (const declared of [true, false]) {
    sagemaker.answer(flood(declared))
    const res = await fetch(`http://127.0.0.1:${port}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: rows(2) })
    t.equal(res.status, 502, declared ? 'a declared length over the cap' : 'a chunked answer passing the cap')
    t.match(await res.json(), { code: 'UPSTREAM_ERROR', message: `the SageMaker endpoint answered more than ${64 * 1024} bytes` })
    await until(() => sent.length > 0, 'the endpoint to see its connection closed')
    const written = sent.pop()!
    t.ok(written < 16 * MB, `the answer was cut off: ${(written / MB).toFixed(1)} MB of 50 MB left the endpoint`)
  }
  sagemaker.answer((_req, res) => json(res, 200, [0, 1]))
  const fine = await fetch(`http://127.0.0.1:${port}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: rows(2) })
  t.equal(fine.status, 200, 'an answer within the cap is read as before')
})

t.test('METRICS_PORT: /metrics and the probes on a listener of their own, not on the API\'s port', async t => {
  const { app, port } = await listening(t, { WORKERS: '0', METRICS_PORT: '0' })
  const ops = (app.metricsServer!.address() as AddressInfo).port
  t.not(ops, port, 'another port')
  await fetch(`http://127.0.0.1:${port}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: rows(1) })
  const metrics = await fetch(`http://127.0.0.1:${ops}/metrics`)
  t.equal(metrics.status, 200)
  t.match(metrics.headers.get('content-type'), /^text\/plain/)
  t.match(await metrics.text(), /http_requests_total\{method="POST",route="\/api\/predictions",status_code="200"\} 1/, 'the API\'s requests are counted there')
  t.equal((await fetch(`http://127.0.0.1:${ops}/health`)).status, 200)
  t.same(await (await fetch(`http://127.0.0.1:${ops}/ready`)).json(), { status: 'ok', backend: 'local' })
  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404, 'the API\'s port has no /metrics')
  t.equal((await fetch(`http://127.0.0.1:${ops}/api/model`)).status, 404, 'and the operational port no API')
  t.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200, 'the probes stay on the API\'s port too')
  await app.close()
  await t.rejects(fetch(`http://127.0.0.1:${ops}/health`), 'the listener closes with the app')
})

t.test('a flood of GET /metrics gets the last rendering, at most ten fresh ones a second', async t => {
  const { app, port } = await listening(t, { WORKERS: '0' })
  const registry = app.metrics
  const render = registry.metrics.bind(registry)
  let renders = 0
  registry.metrics = async () => { renders++; return await render() }
  const started = performance.now()
  let answered = 0
  // Sequential and concurrent scrapes, as a flood sends them.
  for (let round = 0; round < 20; round++) {
    const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(`http://127.0.0.1:${port}/metrics`)))
    for (const res of answers) {
      t.equal(res.status, 200)
      answered += (await res.text()).includes('http_requests_total') ? 1 : 0
    }
  }
  const seconds = (performance.now() - started) / 1000
  t.equal(answered, 200, 'every scrape got the exposition')
  t.ok(renders <= 10 * Math.ceil(seconds + 1), `${renders} renderings for 200 scrapes in ${seconds.toFixed(2)} s`)
  const before = renders
  await new Promise(resolve => setTimeout(resolve, 1100))
  await fetch(`http://127.0.0.1:${port}/metrics`)
  t.equal(renders, before + 1, 'a scrape a second later is rendered afresh')
})

t.test('abusive bodies are refused early or parsed in slices, on every route that takes flows', async t => {
  const { app, port } = await listening(t, { WORKERS: '0' })
  const header = Object.keys(examples.benign).join(',')
  const send = (path: string, body: string, type: string) =>
    fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': type }, body }).then(async res => ({ status: res.status, body: await res.json() }))

  const commas = ','.repeat(6 * 1024 * 1024 - 10)
  for (const path of ['/api/predictions', '/api/scores', '/api/explanations', '/invocations']) {
    // /api/explanations takes at most EXPLAIN_BODY_LIMIT (2 MiB): these 6 MB bodies are refused unread.
    const tooLarge = path === '/api/explanations'
      ? { code: 'BODY_TOO_LARGE', message: `the body exceeds the limit of ${2 * 1024 * 1024} bytes per request to /api/explanations: split the frame` }
      : undefined
    const wide = await send(path, `a${commas}\n`, 'text/csv')
    t.equal(wide.status, tooLarge ? 413 : 400, `${path}: a header of millions of commas`)
    t.match(wide.body, tooLarge ?? { code: 'INVALID_INPUT', message: 'line 1: more than 1000 values (at most 1000 columns)' })
    const wideRow = await send(path, `${header}\n${'1'.repeat(10)}${commas.slice(0, 100_000)}\n`, 'text/csv')
    t.match(wideRow.body, { code: 'INVALID_INPUT', message: 'line 2: more than 1000 values (at most 1000 columns)' }, `${path}: a row of many commas`)
    const emptyRows = await send(path, JSON.stringify({ columns: ['a'], data: Array(2_000_000).fill([]) }), 'application/json')
    t.equal(emptyRows.status, 413, `${path}: two million empty rows`)
    t.match(emptyRows.body, tooLarge ?? { code: 'TOO_MANY_ROWS', message: '2000000 rows exceed the limit of 10000 rows per request: split the frame' })
  }
  const records = await send('/invocations', JSON.stringify({ dataframe_records: Array(20_000).fill({}) }), 'application/json')
  t.match(records, { status: 413, body: { code: 'TOO_MANY_ROWS' } }, 'records count as rows too')
  const blank = await send('/api/predictions', `${header}\n${'\n'.repeat(5 * 1024 * 1024)}${Object.values(examples.attack).map(v => v ?? '').join(',')}\n`, 'text/csv')
  t.same(blank, { status: 200, body: [1] }, '5 MB of blank lines, then a row: parsed, the row found')
  t.equal(app.bodyBytesInFlight(), 0)
})

t.test('CSV parsing yields on a budget of work: blank lines, whitespace lines and repeated headers count', async t => {
  const { csvToFrame } = await import('../input/csv.js')
  const header = Object.keys(examples.benign).join(',')
  for (const [what, filler] of [['blank lines', '\n'], ['whitespace lines', ' \r\n'], ['repeated headers', `${header}\n`]] as const) {
    const text = `${header}\n${filler.repeat(Math.floor(2 * 1024 * 1024 / filler.length))}`
    let turns = 0
    let ticking = true
    const tick = () => { if (ticking) { turns++; setImmediate(tick) } }
    setImmediate(tick)
    const frame = await csvToFrame(text, { maxRows: 10 })
    ticking = false
    t.equal(frame.data.length, 0, `${what}: no rows`)
    // The scan yields every 256 KB; records with content are parsed 250 to a turn.
    t.ok(turns >= 6, `${what}: the event loop turned ${turns} times while 2 MB of them were read`)
  }
})

t.test('CSV line endings \\n, \\r\\n and \\r all slice and number lines alike', async t => {
  const { csvToFrame } = await import('../input/csv.js')
  const header = Object.keys(examples.benign)
  const row = Object.values(examples.benign).map(v => v ?? '').join(',')
  for (const eol of ['\n', '\r\n', '\r']) {
    // 600 rows: three slices of records; a blank line and a bad row at the end name their line.
    const lines = [header.join(','), ...Array(600).fill(row), '', 'x']
    const good = await csvToFrame(lines.slice(0, 601).join(eol) + eol, { maxRows: 1000 })
    t.equal(good.data.length, 600, `${JSON.stringify(eol)}: every row`)
    await t.rejects(csvToFrame(lines.join(eol), { maxRows: 1000 }), { message: `line 603 has 1 values but the header has ${header.length} columns` }, `${JSON.stringify(eol)}: lines counted across slices`)
  }
})
