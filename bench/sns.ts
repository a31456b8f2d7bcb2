/**
 * The CPU an SNS call costs through @aws-sdk/client-sns, measured in this process against the
 * loopback SNS of bench/stubs.ts (its own process, so its CPU is not counted): CPU microseconds per
 * call and per notification, with the SDK as it comes (its Query serializer, client.send per call) and
 * as the service uses it (sns-query.ts's bodies, the middleware stack resolved once). The summary line
 * gives each one's cost per call (a one-message Publish), per KB of message (10 x 25 KB against 10
 * one-row messages in a PublishBatch) and the floor per KB for the same bytes (encodeURIComponent and
 * SHA-256 of the encoded form, in this process).
 *
 *   npm run bench:sns                       # 3,000 calls per case
 *   node --cpu-prof dist/bench/sns.js       # and a CPU profile of where the time goes
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once, setMaxListeners } from 'node:events'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { projectRoot } from '../project.js'
import { notificationsFor, type Notification } from '../notifications/message.js'
import { PublishBatchCommand, PublishCommand, type SNSClient } from '@aws-sdk/client-sns'
import { createSender, createSnsClient, type Sender } from '../notifications/sender.js'
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
const rowMessages = notificationsFor(frame, predictions, 'all', context, 'row')
// A ~25 KB message: the first 45 rows of a request-grouped message.
const big = notificationsFor(frameOf(45) as unknown as PandasSplitFrame, predictions.slice(0, 45).map(() => 1 as const), 'all', context, 'request')[0]
const cases: Array<{ name: string, batch: Notification[] }> = [
  { name: 'Publish: 1 one-row message', batch: rowMessages.slice(0, 1) },
  { name: 'row grouping: 10 one-row messages', batch: rowMessages.slice(0, 10) },
  { name: '10 x 25 KB messages', batch: Array.from({ length: 10 }, () => big) },
  // Four 100-row requests' messages, two per request (one per class): as many as 256 KiB allows.
  { name: 'request grouping: 8 messages of 100-row requests (~50 rows each)', batch: Array.from({ length: 4 }, () => notificationsFor(frame, predictions, 'all', context, 'request')).flat() },
]

/** The SDK as it comes: its Query serializer and client.send per call (the sender before sns-query.ts). */
function sdkSender (client: SNSClient): Sender {
  const attributes = (n: Notification) => Object.fromEntries(Object.entries(n.attributes).map(([name, value]) => [name, { DataType: name === 'rows' ? 'Number' : 'String', StringValue: value as string }]))
  return {
    async send (batch, signal) {
      if (batch.length === 1) {
        await client.send(new PublishCommand({ TopicArn: topic, Message: batch[0].message, MessageAttributes: attributes(batch[0]) }), { abortSignal: signal })
      } else {
        await client.send(new PublishBatchCommand({ TopicArn: topic, PublishBatchRequestEntries: batch.map((n, i) => ({ Id: String(i), Message: n.message, MessageAttributes: attributes(n) })) }), { abortSignal: signal })
      }
      return batch.map(() => ({ status: 'published' as const }))
    },
    async close () { client.destroy() },
  }
}

const senders = {
  sdk: () => sdkSender(createSnsClient(config, { sdkSerializer: true })),
  lean: () => createSender(createSnsClient(config), topic),
}

const kb = (batch: Notification[]) => batch.reduce((s, n) => s + Buffer.byteLength(n.message), 0) / 1024
const results: Record<string, Record<string, number>> = { sdk: {}, lean: {} }
for (const c of cases) {
  for (const [variant, make] of Object.entries(senders) as Array<[keyof typeof senders, () => Sender]>) {
    const sender = make()
    const aborter = new AbortController()
    setMaxListeners(0, aborter.signal)
    const signal = aborter.signal
    const rows = c.batch.reduce((sum, n) => sum + Number(n.attributes.rows ?? 1), 0)
    const n = c.batch.length === 1 ? calls * 2 : calls
    const run = async (k: number) => {
      let next = 0
      await Promise.all(Array.from({ length: 16 }, async () => {
        while (next++ < k) {
          const outcome = await sender.send(c.batch, signal)
          if (!Array.isArray(outcome)) throw new Error(`${outcome.code}: ${outcome.message}`)
        }
      }))
    }
    await run(Math.min(500, n)) // warm-up
    const cpu = process.cpuUsage()
    const started = performance.now()
    await run(n)
    const used = process.cpuUsage(cpu)
    const us = (used.user + used.system) / n
    results[variant][c.name] = us
    console.log(JSON.stringify({ case: c.name, serializer: variant, calls: n, cpu_us_per_call: Math.round(us), cpu_us_per_row: Math.round(us / rows * 10) / 10, kb_per_call: Math.round(kb(c.batch) * 10) / 10, calls_per_s: Math.round(n / ((performance.now() - started) / 1000)) }))
    await sender.close()
  }
}

// The floor for the same bytes, in this process: URL-encoding the messages and hashing the encoded form.
const floorBatch = cases[2].batch
const encodeUs = (() => {
  const cpu = process.cpuUsage()
  for (let i = 0; i < 500; i++) for (const m of floorBatch) encodeURIComponent(m.message)
  const used = process.cpuUsage(cpu)
  return (used.user + used.system) / 500 / kb(floorBatch)
})()
const encoded = Buffer.from(floorBatch.map(m => encodeURIComponent(m.message)).join('&'))
const hashUs = (() => {
  const cpu = process.cpuUsage()
  for (let i = 0; i < 500; i++) createHash('sha256').update(encoded).digest()
  const used = process.cpuUsage(cpu)
  return (used.user + used.system) / 500 / kb(floorBatch)
})()
const floor = encodeUs + hashUs
const perKb = (v: 'sdk' | 'lean') => (results[v][cases[2].name] - results[v][cases[1].name]) / (kb(cases[2].batch) - kb(cases[1].batch))
const round = (x: number) => Math.round(x * 100) / 100
const summary = {
  floor_us_per_kb: round(floor),
  floor_parts: { encodeURIComponent: round(encodeUs), sha256: round(hashUs) },
  sdk: { us_per_kb: round(perKb('sdk')), us_per_call: Math.round(results.sdk[cases[0].name]), x_floor: round(perKb('sdk') / floor) },
  lean: { us_per_kb: round(perKb('lean')), us_per_call: Math.round(results.lean[cases[0].name]), x_floor: round(perKb('lean') / floor) },
}
console.log(JSON.stringify(summary))
stubs.kill('SIGTERM')
