import t, { type Test } from 'tap'
import { createApp } from '../app.js'
import { frameOf } from '../bench/flows.js'
import type { WorkerTask } from '../workers/worker.js'
import { build, examples, post, splitFrame, PANDAS_SPLIT, postTo } from './helper.js'

/**
 * The worker path through a real listening server with bodies near BODY_LIMIT (the rest of the worker
 * path's tests, through inject, are in workers.test.ts).
 */

const { attack } = examples

/** An app on every body's main thread, and a listening one with two worker threads whose tasks are recorded. */
async function pooledServer (t: Test, tasks: Array<Omit<WorkerTask, 'body'>>) {
  const main = await build(t, { WORKERS: '0' })
  const app = createApp({ env: { WORKERS: '2' } })
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const run = app.workerPool!.run
  app.workerPool!.run = (body, task, signal) => { tasks.push(task); return run(body, task, signal) }
  return { main, app, url }
}

t.test('through a real server: a 10,000-row body goes to a worker and answers as on the main thread', async t => {
  const tasks: Array<Omit<WorkerTask, 'body'>> = []
  const { main, url } = await pooledServer(t, tasks)
  const big = frameOf(10000)
  const ask = (body: unknown) => fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: JSON.stringify(body) })
  const res = await ask(big)
  t.equal(res.status, 200)
  const expected = await post(main, big)
  t.equal(await res.text(), expected.body)
  t.equal(tasks.length, 1)
  // A bad cell in the last row: the same 400, naming row and column.
  const bad = { ...big, data: big.data.map((r, i) => i === 9999 ? r.map((v, c) => c === 7 ? 'oops' : v) : r) }
  const refused = await ask(bad)
  t.equal(refused.status, 400)
  const text = await refused.text()
  t.equal(text, (await post(main, bad)).body)
  t.match(JSON.parse(text).message, new RegExp(`^row 9999, column "${big.columns[7]}": "oops" is not a number`))
  // A small body stays on the main thread.
  t.equal((await ask(splitFrame([attack]))).status, 200)
  t.equal(tasks.length, 2)
})

t.test('through a real server: 6 MB bodies to /api/scores and /invocations go to a worker and answer as on the main thread', async t => {
  const tasks: Array<Omit<WorkerTask, 'body'>> = []
  const { main, app, url } = await pooledServer(t, tasks)
  const big = frameOf(10000)
  const ask = (path: string, body: unknown) => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const mainAsk = (path: string, body: unknown) => postTo(main, path, body)

  const scored = await ask('/api/scores', big)
  t.equal(scored.status, 200)
  t.equal(await scored.text(), (await mainAsk('/api/scores', big)).body)
  // Records repeat the column names: 3,000 of them are about 5 MB.
  const records = big.data.slice(0, 3000).map(r => Object.fromEntries(big.columns.map((c, i) => [c, r[i]])))
  for (const body of [{ dataframe_split: big }, { dataframe_records: records }]) {
    const bytes = JSON.stringify(body).length
    t.ok(bytes > 4_000_000 && bytes < app.config.BODY_LIMIT, `${bytes} bytes`)
    const invoked = await ask('/invocations', body)
    t.equal(invoked.status, 200)
    t.equal(await invoked.text(), (await mainAsk('/invocations', body)).body)
  }
  // A bad cell in the last record: the same 400, naming it.
  const bad = { dataframe_records: records.map((r, i) => i === 2999 ? { ...r, [big.columns[7]]: 'oops' } : r) }
  const refused = await ask('/invocations', bad)
  t.equal(refused.status, 400)
  t.equal(await refused.text(), (await mainAsk('/invocations', bad)).body)
  t.same(tasks.map(task => `${task.json ?? 'split'}/${task.answer ?? 'predictions'}`), ['split/scores', 'mlflow/predictions', 'mlflow/predictions', 'mlflow/predictions'])
})

t.test('through a real server: /api/explanations refuses a body over EXPLAIN_BODY_LIMIT unread, naming the limit', async t => {
  const app = createApp({ env: { WORKERS: '0' } })
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const limit = 2 * 1024 * 1024
  t.equal(app.config.EXPLAIN_BODY_LIMIT, limit, '2 MiB by default')
  // 1,000 rows (EXPLAIN_MAX_ROWS) fit well within it.
  const thousand = JSON.stringify(frameOf(1000))
  t.ok(thousand.length < limit / 2, `1,000 rows are ${thousand.length} bytes`)
  t.equal((await fetch(`${url}/api/explanations?top=1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: thousand })).status, 200)
  const big = JSON.stringify(frameOf(10000))
  const started = performance.now()
  const res = await fetch(`${url}/api/explanations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big })
  t.equal(res.status, 413)
  const answer = await res.json() as { code: string, message: string }
  t.equal(answer.code, 'BODY_TOO_LARGE')
  t.match(answer.message, `${limit} bytes per request to /api/explanations`)
  t.ok(app.bodyBytesInFlight() === 0, 'nothing reserved')
  t.comment(`refused in ${(performance.now() - started).toFixed(0)} ms`)
  // Sent chunked (no Content-Length): cut off at the limit, the same answer.
  const chunks = new ReadableStream({ start (c) { c.enqueue(new TextEncoder().encode(big)); c.close() } })
  const chunked = await fetch(`${url}/api/explanations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: chunks, duplex: 'half' } as RequestInit)
  t.equal(chunked.status, 413)
  t.equal(((await chunked.json()) as { code: string }).code, 'BODY_TOO_LARGE')
  // The other routes still take it.
  t.equal((await fetch(`${url}/api/scores`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big })).status, 200)
})
