/**
 * The CPU a PublishBatch costs through @aws-sdk/client-sns, measured in this process against the
 * loopback SNS of bench/stubs.ts (its own process, so its CPU is not counted): CPU microseconds per
 * call and per notification, for row and request grouping, with the client as the service builds it.
 *
 *   npm run bench:sns                       # 3,000 calls per case
 *   node --cpu-prof dist/bench/sns.js       # and a CPU profile of where the time goes
 */
import { spawn } from 'node:child_process'
import { once, setMaxListeners } from 'node:events'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { projectRoot } from '../project.js'
import { notificationsFor, type Notification } from '../notifications/message.js'
import { createSender, createSnsClient } from '../notifications/sender.js'
import type { Config } from '../schemas/config.js'
import type { PandasSplitFrame } from '../schemas/predictions.js'
import { frameOf } from './flows.js'

const { values } = parseArgs({ options: { calls: { type: 'string' } } })
const calls = Number(values.calls ?? 3000)
const stubs = spawn(process.execPath, [join(projectRoot(), 'dist', 'bench', 'stubs.js')], { stdio: ['ignore', 'pipe', 'inherit'] })
const [line] = await once(stubs.stdout!, 'data') as [Buffer]
const ports = JSON.parse(line.toString().split('\n')[0]) as { sns: number }
const topic = 'arn:aws:sns:us-east-1:123456789012:ml-ids-bench'
const config = {
  AWS_SNS_PREDICTIONS_TOPIC: topic,
  AWS_SNS_HOST: `http://127.0.0.1:${ports.sns}`,
  AWS_ACCESS_KEY: 'AKIDBENCH',
  AWS_SECRET_KEY: 'bench',
  NOTIFY_CONCURRENCY: 16,
  SNS_TIMEOUT_MS: 10000,
} as unknown as Config & { AWS_SNS_PREDICTIONS_TOPIC: string }

const frame = frameOf(100) as unknown as PandasSplitFrame
const predictions = frame.data.map((_, i) => (i % 3 === 0 ? 1 : 0) as 0 | 1)
const context = { model: 'bench', requestId: 'b6e2a7a4-6c1f-4a58-9d43-3a7c2b8e1f00' }
const cases: Array<{ name: string, batch: Notification[] }> = [
  { name: 'row grouping: 10 one-row messages', batch: notificationsFor(frame, predictions, 'all', context, 'row').slice(0, 10) },
  // Four 100-row requests' messages, two per request (one per class): as many as 256 KiB allows.
  { name: 'request grouping: 8 messages of 100-row requests (~50 rows each)', batch: Array.from({ length: 4 }, () => notificationsFor(frame, predictions, 'all', context, 'request')).flat() },
]

const results = []
for (const c of cases) {
  const client = createSnsClient(config)
  const sender = createSender(client, topic)
  const aborter = new AbortController()
  setMaxListeners(0, aborter.signal)
  const signal = aborter.signal
  const rows = c.batch.reduce((sum, n) => sum + Number(n.attributes.rows ?? 1), 0)
  const run = async (n: number) => {
    let next = 0
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next++ < n) {
        const outcome = await sender.send(c.batch, signal)
        if (!Array.isArray(outcome)) throw new Error(`${outcome.code}: ${outcome.message}`)
      }
    }))
  }
  await run(Math.min(500, calls)) // warm-up
  const cpu = process.cpuUsage()
  const started = performance.now()
  await run(calls)
  const used = process.cpuUsage(cpu)
  const us = (used.user + used.system) / calls
  const result = { case: c.name, calls, cpu_us_per_call: Math.round(us), cpu_us_per_row: Math.round(us / rows * 10) / 10, bytes_per_call: c.batch.reduce((s, n) => s + n.message.length, 0), calls_per_s: Math.round(calls / ((performance.now() - started) / 1000)) }
  results.push(result)
  console.log(JSON.stringify(result))
  client.destroy()
}
stubs.kill('SIGTERM')
