import t, { type Test } from 'tap'
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApp } from '../app.js'
import { build, examples, post, splitFrame } from './helper.js'
import { snsServer } from './support/sns.js'

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:ml-ids-predictions'
const { benign, attack } = examples

function snsEnv (url: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    AWS_SNS_PREDICTIONS_TOPIC: TOPIC,
    AWS_SNS_HOST: url,
    AWS_ACCESS_KEY: 'AKIDEXAMPLE',
    AWS_SECRET_KEY: 'secret',
    NOTIFY_DATA_DIR: mkdtempSync(join(tmpdir(), 'ml-ids-notify-')),
    NOTIFY_RETRY_BASE_MS: '5',
    NOTIFY_RETRY_MAX_MS: '40',
    NOTIFY_GROUPING: 'row',
    ...extra,
  }
}

async function until (t: Test, what: string, condition: () => boolean, timeoutMs = 10000) {
  const started = Date.now()
  while (!condition()) {
    if (Date.now() - started > timeoutMs) {
      t.fail(`timed out waiting for ${what}`)
      return
    }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/** Rows that differ (so each message is recognisable), alternating benign and attack. */
function rows (count: number) {
  return Array.from({ length: count }, (_, i) => ({ ...(i % 2 === 0 ? benign : attack), flow_iat_min: 1000 + i }))
}
const rowOf = (message: string) => JSON.parse(message).data[0]

t.test('one notification per row: the row as a one-row split frame plus prediction, and its attributes', async t => {
  const sns = await snsServer(t)
  const app = await build(t, snsEnv(sns.url))
  const frame = splitFrame([benign, attack, benign], { extra: { timestamp: '21/02/2018 10:15:06' } })
  frame.index = [10, 11, 12]
  const res = await post(app, frame)
  t.same(res.json(), [0, 1, 0])
  await until(t, 'three messages', () => sns.accepted.length === 3)
  const byIndex = new Map(sns.accepted.map(m => [JSON.parse(m.message).index[0], m]))
  for (const [i, label] of [[10, 0], [11, 1], [12, 0]] as const) {
    const m = byIndex.get(i)!
    t.same(JSON.parse(m.message), { columns: [...frame.columns, 'prediction'], index: [i], data: [[...frame.data[i - 10], label]] }, `row ${i}`)
    t.same(m.attributes, {
      prediction: { type: 'String', value: label === 1 ? 'attack' : 'benign' },
      model: { type: 'String', value: 'cic-ids2018-xgb' },
      request_id: { type: 'String', value: res.headers['x-request-id'] },
    })
    t.equal(m.topic, TOPIC)
  }
  t.match(sns.requests[0].headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/sns\/aws4_request/)
  t.equal(sns.calls.length, 1, 'one PublishBatch for three rows')
  // SNS has the messages before the publisher has read its answer.
  await until(t, 'the answer to be counted', () => app.notifications.stats().sns?.published === 3)
  t.equal(sns.calls[0].action, 'PublishBatch')
  t.match((await app.inject('/api/notifications/stats')).json(), { mode: 'all', sns: { published: 3, queued: 0, in_flight: 0, sns_calls: 1 } })
})

t.test('without an index the row\'s position is its label', async t => {
  const sns = await snsServer(t)
  const app = await build(t, snsEnv(sns.url))
  await post(app, splitFrame([benign, attack], { index: false }))
  await until(t, 'two messages', () => sns.accepted.length === 2)
  t.same(sns.accepted.map(m => JSON.parse(m.message).index[0]).sort(), [0, 1])
})

t.test('the response is sent before publishing starts', async t => {
  const sns = await snsServer(t, { delayMs: 300 })
  const app = await build(t, snsEnv(sns.url))
  const started = Date.now()
  const res = await post(app, splitFrame(rows(4)))
  t.equal(res.statusCode, 200)
  t.ok(Date.now() - started < 300, 'the response did not wait for SNS')
  t.equal(sns.accepted.length, 0, 'nothing published yet when the response arrived')
  await until(t, 'four messages', () => sns.accepted.length === 4)
})

t.test('batching: PublishBatch with at most 10 entries', async t => {
  const sns = await snsServer(t)
  const app = await build(t, snsEnv(sns.url))
  await post(app, splitFrame(rows(25)))
  await until(t, '25 messages', () => sns.accepted.length === 25)
  t.same(sns.calls.map(c => c.action), ['PublishBatch', 'PublishBatch', 'PublishBatch'])
  t.same(sns.calls.map(c => c.entries).sort((a, b) => a - b), [5, 10, 10])
  t.same(new Set(sns.accepted.map(m => rowOf(m.message).join())).size, 25, 'each row once')
})

t.test('per-entry failures in a PublishBatch answer are retried individually', async t => {
  const failedOnce = new Set<string>()
  const sns = await snsServer(t, {
    entry: (entry) => {
      const transient = JSON.parse(entry.message).index[0] % 3 === 0 && !failedOnce.has(entry.message)
      if (!transient) return undefined
      failedOnce.add(entry.message)
      return { code: 'InternalError', senderFault: false }
    },
  })
  const app = await build(t, snsEnv(sns.url))
  await post(app, splitFrame(rows(10)))
  await until(t, '10 messages', () => sns.accepted.length === 10 && app.notifications.stats().sns?.published === 10)
  t.equal(failedOnce.size, 4, 'rows 0, 3, 6 and 9 failed once')
  t.same(sns.accepted.map(m => JSON.parse(m.message).index[0]).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'each exactly once')
  t.match((await app.inject('/api/notifications/stats')).json().sns, { published: 10, retried: 4, dead_lettered: 0 })
})

t.test('a message SNS refuses for good goes to the dead-letter file, not round and round', async t => {
  const sns = await snsServer(t, { entry: (entry) => JSON.parse(entry.message).index[0] === 1 ? { code: 'InvalidParameter', senderFault: true } : undefined })
  const env = snsEnv(sns.url)
  const app = await build(t, env)
  await post(app, splitFrame(rows(3)))
  await until(t, 'two published and one dead letter', () => app.notifications.stats().sns?.dead_lettered === 1 && sns.accepted.length === 2)
  await app.close()
  const deadLetters = readFileSync(join(env.NOTIFY_DATA_DIR!, 'dead-letter.jsonl'), 'utf8').trim().split('\n').map(line => JSON.parse(line))
  t.equal(deadLetters.length, 1)
  t.match(deadLetters[0], { reason: /InvalidParameter/, notification: { attributes: { prediction: 'attack' } } })
  t.equal(JSON.parse(deadLetters[0].notification.message).index[0], 1)
  t.equal(sns.calls.length, 1, 'not retried')
})

t.test('SNS answering 500 for a while, then recovering: nothing lost, nothing duplicated', async t => {
  const sns = await snsServer(t, { call: ({ number }) => number <= 6 ? { status: 500, code: 'InternalError' } : undefined })
  const app = await build(t, snsEnv(sns.url))
  await post(app, splitFrame(rows(12)))
  await post(app, splitFrame(rows(12).slice(0, 3).map(r => ({ ...r, flow_iat_min: 5000 + r.flow_iat_min }))))
  await until(t, '15 messages', () => sns.accepted.length === 15 && app.notifications.stats().sns?.published === 15)
  t.equal(new Set(sns.accepted.map(m => rowOf(m.message).join())).size, 15, 'each row exactly once')
  const stats = app.notifications.stats().sns!
  t.equal(stats.failed_calls, 6)
  t.ok(stats.retried > 0)
  t.equal(stats.spilled, 0)
})

t.test('SNS down past the queue and the attempts: spilled to disk, replayed on the next start', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ml-ids-spill-'))
  const down = await snsServer(t, { call: () => ({ status: 503, code: 'ServiceUnavailable' }) })
  const first = createApp({ env: snsEnv(down.url, { NOTIFY_DATA_DIR: dataDir, NOTIFY_QUEUE_SIZE: '10', NOTIFY_MAX_ATTEMPTS: '2' }) })
  await first.ready()
  const res = await post(first, splitFrame(rows(30)))
  t.same(res.statusCode, 200, 'the client does not see SNS failing')
  await first.close()
  t.equal(down.accepted.length, 0)
  const stats = first.notifications.stats().sns!
  t.equal(stats.spilled, 30, 'every notification is on disk')
  const spilled = readFileSync(join(dataDir, 'spill.jsonl'), 'utf8').trim().split('\n')
  t.equal(spilled.length, 30)

  const up = await snsServer(t)
  const second = await build(t, snsEnv(up.url, { NOTIFY_DATA_DIR: dataDir }))
  await until(t, '30 replayed messages', () => up.accepted.length === 30 && second.notifications.stats().sns?.published === 30)
  t.equal(new Set(up.accepted.map(m => rowOf(m.message).join())).size, 30, 'each row once')
  t.match(second.notifications.stats().sns, { replayed: 30, published: 30 })
  await until(t, 'the replayed file to be removed', () => readdirSync(dataDir).filter(f => f.includes('spill')).length === 0)
})

t.test('spilled notifications go out once SNS recovers, without a restart', async t => {
  let healthy = false
  const sns = await snsServer(t, { call: () => healthy ? undefined : { status: 500, code: 'InternalError' } })
  const app = await build(t, snsEnv(sns.url, { NOTIFY_QUEUE_SIZE: '10', NOTIFY_MAX_ATTEMPTS: '1' }))
  await post(app, splitFrame(rows(20)))
  await until(t, 'everything spilled', () => app.notifications.stats().sns?.spilled === 20)
  healthy = true
  await post(app, splitFrame([{ ...attack, flow_iat_min: 99999 }]))
  await until(t, '21 messages', () => sns.accepted.length === 21)
  t.equal(new Set(sns.accepted.map(m => rowOf(m.message).join())).size, 21)
})

t.test('on close the queue drains; past the deadline the rest is spilled, not dropped', async t => {
  const slow = await snsServer(t, { delayMs: 100 })
  const draining = createApp({ env: snsEnv(slow.url) })
  await draining.ready()
  await post(draining, splitFrame(rows(40)))
  await draining.close()
  t.equal(slow.accepted.length, 40, 'all published before close returned')

  const stuck = await snsServer(t, { delayMs: 60_000 })
  const env = snsEnv(stuck.url, { NOTIFY_DRAIN_TIMEOUT_MS: '300' })
  const app = createApp({ env })
  await app.ready()
  await post(app, splitFrame(rows(15)))
  const started = Date.now()
  await app.close()
  t.ok(Date.now() - started < 3000, 'close kept to the deadline')
  const spilled = readFileSync(join(env.NOTIFY_DATA_DIR!, 'spill.jsonl'), 'utf8').trim().split('\n')
  t.equal(spilled.length, 15, 'in-flight and queued notifications spilled')
})

t.test('a row too large for any batch is published alone, and counted when SNS refuses it', async t => {
  const sns = await snsServer(t, { entry: (entry) => Buffer.byteLength(entry.message) > 256 * 1024 ? { code: 'InvalidParameter', senderFault: true } : undefined })
  const app = await build(t, snsEnv(sns.url))
  // 300 extra columns of 1,000 characters: a row of about 300 KB, over SNS's 256 KiB.
  const wide = (fill: string) => Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`note_${i}`, fill]))
  const huge = { ...attack, ...wide('x'.repeat(1000)) }
  await post(app, splitFrame([{ ...benign, ...wide('') }, huge, { ...attack, ...wide('') }]))
  await until(t, 'one dead letter and two published', () => app.notifications.stats().sns?.dead_lettered === 1 && sns.accepted.length === 2)
  t.ok(sns.calls.some(c => c.action === 'Publish' && c.entries === 1), 'the large row went alone')
})

t.test('NOTIFY=attacks publishes attacks only; NOTIFY=none nothing', async t => {
  const sns = await snsServer(t)
  const app = await build(t, snsEnv(sns.url, { NOTIFY: 'attacks' }))
  await post(app, splitFrame(rows(6)))
  await until(t, 'three attacks', () => sns.accepted.length === 3)
  t.ok(sns.accepted.every(m => m.attributes.prediction.value === 'attack'))

  const quiet = await snsServer(t)
  const none = await build(t, snsEnv(quiet.url, { NOTIFY: 'none' }))
  await post(none, splitFrame(rows(6)))
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(quiet.calls.length, 0)
})

t.test('a rejected request notifies nothing', async t => {
  const sns = await snsServer(t)
  const app = await build(t, snsEnv(sns.url))
  const frame = splitFrame(rows(3))
  frame.data[2] = frame.data[2].slice(1)
  t.equal((await post(app, frame)).statusCode, 400)
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(sns.calls.length, 0)
})

t.test('NOTIFY_LOG_FILE appends notifications as JSON lines', async t => {
  const file = join(mkdtempSync(join(tmpdir(), 'ml-ids-log-')), 'nested', 'notifications.jsonl')
  const app = createApp({ env: { NOTIFY_LOG_FILE: file } })
  await app.ready()
  await post(app, splitFrame(rows(4)))
  await app.close()
  const lines = readFileSync(file, 'utf8').trim().split('\n').map(line => JSON.parse(line))
  t.equal(lines.length, 4)
  t.match(lines[1], { message: { columns: Array, index: [1], data: [Array] }, attributes: { prediction: 'attack', model: 'cic-ids2018-xgb' } })
})

t.test('without SNS nothing is written to the data directory', async t => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'ml-ids-none-')), 'data')
  const app = await build(t, { NOTIFY_DATA_DIR: dataDir })
  await post(app, splitFrame(rows(2)))
  t.equal(existsSync(dataDir), false)
  t.same((await app.inject('/api/notifications/stats')).json(), { mode: 'all', sns: null, stream: { subscribers: 0, emitted: 0, dropped_subscribers: 0 } })
})
