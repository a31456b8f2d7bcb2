import t from 'tap'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { examples, splitFrame, PANDAS_SPLIT } from './helper.js'
import { snsServer } from './support/sns.js'
import { startServer } from './support/server-process.js'
import { onDisk, rowsOf } from './support/journal.js'

/** Load until `enough()` (at least 300 ms, so requests are in flight and notifications in every state), or 10 s. */
async function loadUntil (enough: () => boolean): Promise<void> {
  const started = Date.now()
  while ((Date.now() - started < 300 || !enough()) && Date.now() - started < 10_000) await new Promise(resolve => setTimeout(resolve, 20))
}

t.test('SIGTERM under load: requests in flight complete, no 5xx but 503s for latecomers, every notification published or spilled', async t => {
  const sns = await snsServer(t, { delayMs: 30 })
  const dataDir = mkdtempSync(join(tmpdir(), 'ml-ids-shutdown-'))
  const server = startServer({
    PORT: '0',
    HOST: '127.0.0.1',
    AWS_SNS_PREDICTIONS_TOPIC: 'arn:aws:sns:eu-west-1:123456789012:ml-ids',
    AWS_SNS_HOST: sns.url,
    AWS_ACCESS_KEY: 'AKID',
    AWS_SECRET_KEY: 'x',
    NOTIFY_DATA_DIR: dataDir,
    NOTIFY_DRAIN_TIMEOUT_MS: '200',
  })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const url = await server.listening
  const body = JSON.stringify(splitFrame([examples.benign, examples.attack]))
  const outcomes = { ok: 0, unavailable: 0, refused: 0, other: [] as string[] }
  const answered: string[] = []
  const state = { stopping: false }

  async function client () {
    while (!state.stopping || outcomes.refused === 0) {
      try {
        const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body })
        const text = await res.text()
        if (res.status === 200 && text === '[0,1]') {
          outcomes.ok++
          answered.push(`${res.headers.get('x-request-id')}:0`, `${res.headers.get('x-request-id')}:1`)
        } else if (res.status === 503) outcomes.unavailable++
        else outcomes.other.push(`${res.status} ${text.slice(0, 100)}`)
      } catch {
        outcomes.refused++
        return
      }
    }
  }

  const clients = Array.from({ length: 20 }, client)
  await loadUntil(() => outcomes.ok > 40)
  state.stopping = true
  server.child.kill('SIGTERM')
  const [code] = await once(server.child, 'exit')
  await Promise.all(clients)

  t.equal(code, 0, 'exited cleanly')
  t.same(outcomes.other, [], 'no other answers: no 5xx but 503 while closing')
  t.ok(outcomes.ok > 20, `${outcomes.ok} requests answered`)
  t.ok(outcomes.refused > 0, 'new connections refused after close')
  // Every answered row has its notification: at SNS, or in the journal for the next start.
  const published = rowsOf(sns.accepted)
  const kept = rowsOf(onDisk(dataDir))
  const everywhere = new Set([...published, ...kept])
  t.same(answered.filter(row => !everywhere.has(row)), [], `${published.length} rows published + ${kept.length} on disk cover the ${answered.length} answered`)
})

t.test('SIGKILL under load with SNS slow: no answered row is lost, the next start publishes them', async t => {
  const slow = await snsServer(t, { delayMs: 200 })
  const dataDir = mkdtempSync(join(tmpdir(), 'ml-ids-kill-'))
  const env = {
    PORT: '0',
    HOST: '127.0.0.1',
    AWS_SNS_PREDICTIONS_TOPIC: 'arn:aws:sns:eu-west-1:123456789012:ml-ids',
    AWS_ACCESS_KEY: 'AKID',
    AWS_SECRET_KEY: 'x',
    NOTIFY_DATA_DIR: dataDir,
    // SNS far slower than the load: most notifications are queued in memory when the process dies.
    NOTIFY_CONCURRENCY: '1',
  }
  // SIGKILLed: it never writes its coverage, so it starts without tap's loaders.
  const first = startServer({ ...env, AWS_SNS_HOST: slow.url }, { coverage: false })
  t.teardown(() => { first.child.kill('SIGKILL') })
  const url = await first.listening
  const body = JSON.stringify(splitFrame([examples.benign, examples.attack]))
  const answered: string[] = []
  const state = { killed: false }
  async function client () {
    while (!state.killed) {
      try {
        const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body })
        if (res.status === 200 && await res.text() === '[0,1]') answered.push(`${res.headers.get('x-request-id')}:0`, `${res.headers.get('x-request-id')}:1`)
      } catch {
        return
      }
    }
  }
  const clients = Array.from({ length: 10 }, client)
  await loadUntil(() => answered.length > 200)
  state.killed = true
  first.child.kill('SIGKILL')
  await once(first.child, 'exit')
  await Promise.all(clients)
  const before = new Set(rowsOf(slow.accepted))
  t.ok(answered.length > 100, `${answered.length} rows answered`)
  t.ok(answered.some(row => !before.has(row)), `${answered.filter(row => !before.has(row)).length} answered rows were not yet published when the process was killed`)

  const fast = await snsServer(t)
  const second = startServer({ ...env, AWS_SNS_HOST: fast.url })
  t.teardown(() => { second.child.kill('SIGKILL') })
  await second.listening
  const missing = () => {
    const published = new Set([...rowsOf(slow.accepted), ...rowsOf(fast.accepted)])
    return answered.filter(row => !published.has(row))
  }
  for (let waited = 0; missing().length > 0 && waited < 20_000; waited += 50) await new Promise(resolve => setTimeout(resolve, 50))
  t.same(missing(), [], 'every answered row published after the restart')
  second.child.kill('SIGTERM')
  await once(second.child, 'exit')
})
