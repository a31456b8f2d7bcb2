import t from 'tap'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { examples, splitFrame, PANDAS_SPLIT } from './helper.js'
import { snsServer } from './support/sns.js'
import { startServer } from './support/server-process.js'

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
  const state = { stopping: false }

  async function client () {
    while (!state.stopping || outcomes.refused === 0) {
      try {
        const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body })
        const text = await res.text()
        if (res.status === 200 && text === '[0,1]') outcomes.ok++
        else if (res.status === 503) outcomes.unavailable++
        else outcomes.other.push(`${res.status} ${text.slice(0, 100)}`)
      } catch {
        outcomes.refused++
        return
      }
    }
  }

  const clients = Array.from({ length: 20 }, client)
  await new Promise(resolve => setTimeout(resolve, 1000))
  state.stopping = true
  server.child.kill('SIGTERM')
  const [code] = await once(server.child, 'exit')
  await Promise.all(clients)

  t.equal(code, 0, 'exited cleanly')
  t.same(outcomes.other, [], 'no other answers: no 5xx but 503 while closing')
  t.ok(outcomes.ok > 20, `${outcomes.ok} requests answered`)
  t.ok(outcomes.refused > 0, 'new connections refused after close')
  // Every answered row has its notification: at SNS, or in the spill file for the next start.
  const spilled = existsSync(join(dataDir, 'spill.jsonl')) ? readFileSync(join(dataDir, 'spill.jsonl'), 'utf8').trim().split('\n').filter(Boolean).length : 0
  t.equal(sns.accepted.length + spilled, outcomes.ok * 2, `${sns.accepted.length} published + ${spilled} spilled = ${outcomes.ok} requests x 2 rows`)
})
