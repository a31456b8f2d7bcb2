/**
 * The CPU an SNS call costs through @aws-sdk/client-sns, measured in this process against the
 * loopback SNS of bench/stubs.ts (its own process, so its CPU is not counted): CPU microseconds per
 * call and per notification, with the SDK as it comes (its Query serializer, client.send per call) and
 * as the service uses it (sns-query.ts's bodies, the middleware stack resolved once). The summary line
 * gives each one's cost per call (a one-message Publish), per KB of message (10 x 25 KB against 10
 * one-row messages in a PublishBatch) and the floor per KB for the same bytes (encodeURIComponent and
 * SHA-256 of the encoded form, in this process).
 *
 * Then the PublishBatch of 10 one-row messages (what 1,000 one-row requests a second make, 100 times
 * a second) as a bare signed POST (node:http and node:crypto, the same form and SigV4: what of a call
 * any client pays) back to back, and through both at a fixed pace: what a call costs at the pace a
 * deployment sees.
 *
 *   npm run bench:sns                       # 3,000 calls per case, then 5 s at 100 calls/s
 *   npm run bench:sns -- --rate 50 --seconds 10
 *   node --cpu-prof dist/bench/sns.js       # and a CPU profile of where the time goes
 */
import { spawn } from 'node:child_process'
import { createHash, createHmac } from 'node:crypto'
import { Agent, request } from 'node:http'
import { once, setMaxListeners } from 'node:events'
import { join } from 'node:path'
import { projectRoot } from '../project.js'
import { commandLine } from '../scripts/cli.js'
import { notificationsFor, type Notification } from '../notifications/message.js'
import { PublishBatchCommand, PublishCommand, type SNSClient } from '@aws-sdk/client-sns'
import { attributesOf, createSender, createSnsClient, type Sender } from '../notifications/sender.js'
import { publishBody } from '../notifications/sns-query.js'
import type { Config } from '../schemas/config.js'
import type { PandasSplitFrame } from '../schemas/predictions.js'
import { frameOf } from './flows.js'

const USAGE = `usage: npm run bench:sns -- [--calls <n>] [--rate <n>] [--seconds <s>]

CPU per SNS call and per KB through @aws-sdk/client-sns, as it comes and as the service uses it,
against a loopback SNS; then a PublishBatch at a fixed pace, beside a bare signed POST.

  --calls <n>      calls per case, back to back (default 3000)
  --rate <n>       calls per second of the paced part (default 100)
  --seconds <s>    length of the paced part (default 5)
  -h, --help       this text
`
const { values } = commandLine('bench:sns', USAGE, { options: { calls: { type: 'string' }, rate: { type: 'string' }, seconds: { type: 'string' } } })
const calls = Number(values.calls ?? 3000)
const rate = Number(values.rate ?? 100)
const seconds = Number(values.seconds ?? 5)
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
  return {
    async send (batch, signal) {
      if (batch.length === 1) {
        await client.send(new PublishCommand({ TopicArn: topic, Message: batch[0].message, MessageAttributes: attributesOf(batch[0]) }), { abortSignal: signal })
      } else {
        await client.send(new PublishBatchCommand({ TopicArn: topic, PublishBatchRequestEntries: batch.map((n, i) => ({ Id: String(i), Message: n.message, MessageAttributes: attributesOf(n) })) }), { abortSignal: signal })
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
    const { us, callsPerS } = await backToBack(sender, c.batch, n, signal)
    results[variant][c.name] = us
    console.log(JSON.stringify({ case: c.name, serializer: variant, calls: n, cpu_us_per_call: Math.round(us), cpu_us_per_row: Math.round(us / rows * 10) / 10, kb_per_call: Math.round(kb(c.batch) * 10) / 10, calls_per_s: callsPerS }))
    await sender.close()
  }
}

/** CPU microseconds per call of `n` calls, 16 at a time, after a warm-up. */
async function backToBack (sender: Sender, batch: Notification[], n: number, signal: AbortSignal) {
  const run = async (k: number) => {
    let next = 0
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next++ < k) {
        const outcome = await sender.send(batch, signal)
        if (!Array.isArray(outcome)) throw new Error(`${outcome.code}: ${outcome.message}`)
      }
    }))
  }
  await run(Math.min(500, n)) // warm-up
  const cpu = process.cpuUsage()
  const started = performance.now()
  await run(n)
  const used = process.cpuUsage(cpu)
  return { us: (used.user + used.system) / n, callsPerS: Math.round(n / ((performance.now() - started) / 1000)) }
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

/**
 * A PublishBatch as a bare signed POST: the Query form sns-query.ts writes, SHA-256 of it,
 * SigV4's canonical request, string to sign and one HMAC with a signing key derived once (as the SDK
 * caches it), a keep-alive socket, the answer read whole. Not a client (no retries, no errors, no
 * credential refresh): the floor a call costs in this process whatever the client.
 */
function bareSender (): Sender {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 })
  const host = `127.0.0.1:${ports.sns}`
  const signingKey = createHmac('sha256', 'AWS4bench').update('derived once').digest()
  return {
    async send (batch) {
      // The bytes the service's client sends (sns-query.ts), without the SDK around them.
      const entries = batch.map((n, i) => ({ Id: String(i), Message: n.message, MessageAttributes: attributesOf(n) }))
      const body = publishBody('PublishBatch', { TopicArn: topic, PublishBatchRequestEntries: entries }, 'Action=PublishBatch&Version=2010-03-31')!
      const date = new Date().toISOString().replace(/[:-]|\.\d{3}/g, '')
      const scope = `${date.slice(0, 8)}/us-east-1/sns/aws4_request`
      const canonical = `POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:${host}\nx-amz-date:${date}\n\ncontent-type;host;x-amz-date\n${createHash('sha256').update(body).digest('hex')}`
      const signature = createHmac('sha256', signingKey).update(`AWS4-HMAC-SHA256\n${date}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`).digest('hex')
      const answer = await new Promise<string>((resolve, reject) => {
        const req = request({
          host: '127.0.0.1',
          port: ports.sns,
          method: 'POST',
          path: '/',
          agent,
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length, 'x-amz-date': date, authorization: `AWS4-HMAC-SHA256 Credential=AKIDBENCH/${scope}, SignedHeaders=content-type;host;x-amz-date, Signature=${signature}` },
        }, res => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', chunk => { text += chunk })
          res.on('end', () => resolve(text))
        })
        req.on('error', reject)
        req.end(body)
      })
      if (!answer.includes('<Successful>')) throw new Error(`not answered: ${answer.slice(0, 200)}`)
      return batch.map(() => ({ status: 'published' as const }))
    },
    async close () { agent.destroy() },
  }
}

// The same 10-message PublishBatch back to back as a bare signed POST: what of a call any client pays.
const bare = bareSender()
const bareSignal = new AbortController().signal
setMaxListeners(0, bareSignal)
const bareUs = (await backToBack(bare, cases[1].batch, calls, bareSignal)).us
await bare.close()
console.log(JSON.stringify({ case: `${cases[1].name}, back to back`, lean_us_per_call: Math.round(results.lean[cases[1].name]), bare_post_us_per_call: Math.round(bareUs), lean_x_bare: round(results.lean[cases[1].name] / bareUs) }))

// At a fixed pace: CPU per call when calls come `rate` a second, not back to back.
const paced = cases[1]
const pace: Record<string, number> = {}
for (const [variant, make] of [['lean', senders.lean], ['bare POST', bareSender]] as Array<[string, () => Sender]>) {
  const sender = make()
  const aborter = new AbortController()
  setMaxListeners(0, aborter.signal)
  for (let i = 0; i < 500; i++) await sender.send(paced.batch, aborter.signal) // warm-up, back to back
  let done = 0
  const cpu = process.cpuUsage()
  const started = performance.now()
  await new Promise<void>((resolve, reject) => {
    let sent = 0
    const tick = setInterval(() => {
      // As many calls as the pace asks by now: timers may fire late, the pace holds on average.
      const due = Math.floor((performance.now() - started) / 1000 * rate)
      for (; sent < due; sent++) sender.send(paced.batch, aborter.signal).then(() => { done++ }, reject)
      if (performance.now() - started >= seconds * 1000) {
        clearInterval(tick)
        const wait = setInterval(() => { if (done === sent) { clearInterval(wait); resolve() } }, 5)
      }
    }, 5)
  })
  const used = process.cpuUsage(cpu)
  pace[variant] = Math.round((used.user + used.system) / done)
  console.log(JSON.stringify({ case: `${paced.name}, ${rate} calls/s`, client: variant, calls: done, cpu_us_per_call: pace[variant] }))
  await sender.close()
}
console.log(JSON.stringify({ paced_calls_per_s: rate, lean_us_per_call: pace.lean, bare_post_us_per_call: pace['bare POST'], lean_x_bare: round(pace.lean / pace['bare POST']) }))
stubs.kill('SIGTERM')
