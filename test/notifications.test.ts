import t, { type Test } from 'tap'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { createApp } from '../app.js'
import { build, examples, post, splitFrame } from './helper.js'
import { sizeOf, snsServer } from './support/sns.js'
import { journalFiles, onDisk, rowsOf } from './support/journal.js'
import { rows, snsEnv, TOPIC, until } from './support/notifications.js'
import { closedPort } from './support/server-process.js'

const { benign, attack } = examples

/**
 * A service that answers `count` rows while SNS refuses every call, then stops: their notifications are
 * left in `dataDir` for the next start to replay.
 */
async function answeredWhileSnsDown (t: Test, dataDir: string, count: number, extra: NodeJS.ProcessEnv = {}) {
  const down = await snsServer(t, { call: () => ({ status: 503, code: 'ServiceUnavailable' }) })
  const app = createApp({ env: snsEnv(down.url, { NOTIFY_DATA_DIR: dataDir, NOTIFY_MAX_ATTEMPTS: '1', ...extra }) })
  await app.ready()
  const res = await post(app, splitFrame(rows(count)))
  await app.close()
  return { down, app, res }
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

t.test('SNS down past the queue and the attempts: on disk, replayed on the next start', async t => {
  for (const journal of ['on', 'off']) {
    const dataDir = mkdtempSync(join(tmpdir(), 'ml-ids-spill-'))
    const { down, app: first, res } = await answeredWhileSnsDown(t, dataDir, 30, { NOTIFY_QUEUE_SIZE: '10', NOTIFY_MAX_ATTEMPTS: '2', NOTIFY_JOURNAL: journal })
    t.same(res.statusCode, 200, `${journal}: the client does not see SNS failing`)
    t.equal(down.accepted.length, 0)
    t.equal(first.notifications.stats().sns!.spilled, 30, `${journal}: every notification is on disk`)
    t.equal(onDisk(dataDir).length, 30)

    const up = await snsServer(t)
    const second = await build(t, snsEnv(up.url, { NOTIFY_DATA_DIR: dataDir, NOTIFY_JOURNAL: journal }))
    await until(t, '30 replayed messages', () => up.accepted.length === 30 && second.notifications.stats().sns?.published === 30)
    t.equal(new Set(up.accepted.map(m => rowOf(m.message).join())).size, 30, `${journal}: each row once`)
    t.match(second.notifications.stats().sns, { replayed: 30, published: 30, failed_calls: 0 })
    await until(t, 'the replayed segment to be removed', () => journalFiles(dataDir).length === 0)
  }
})

t.test('replay remembers its progress: a stop half-way does not publish the first half again', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ml-ids-progress-'))
  await answeredWhileSnsDown(t, dataDir, 100)
  t.equal(onDisk(dataDir).length, 100)

  // SNS takes three calls, then fails: the process stops with part of the file published.
  const flaky = await snsServer(t, { call: ({ number }) => number > 3 ? { status: 503, code: 'ServiceUnavailable' } : undefined })
  const second = createApp({ env: snsEnv(flaky.url, { NOTIFY_DATA_DIR: dataDir, NOTIFY_CONCURRENCY: '1', NOTIFY_MAX_ATTEMPTS: '1' }) })
  await second.ready()
  await until(t, 'a few calls published', () => flaky.calls.length > 3)
  await second.close()
  t.equal(flaky.accepted.length, 30, 'three batches of 10 published before the stop')
  t.equal(onDisk(dataDir).length, 70, 'their acknowledgements are on disk')

  const up = await snsServer(t)
  const third = await build(t, snsEnv(up.url, { NOTIFY_DATA_DIR: dataDir }))
  await until(t, 'the other 70', () => third.notifications.stats().sns?.published === 70)
  const all = [...flaky.accepted, ...up.accepted].map(m => rowOf(m.message).join())
  t.equal(all.length, 100, 'no row published twice')
  t.equal(new Set(all).size, 100, 'every row published')
})

t.test('replay race: a segment is not listed again while its entries are in flight', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ml-ids-race-'))
  await answeredWhileSnsDown(t, dataDir, 20)

  let release = () => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  const slow = await snsServer(t, { gate })
  const app = await build(t, snsEnv(slow.url, { NOTIFY_DATA_DIR: dataDir }))
  const sns = { stats: () => app.notifications.stats().sns!, start: () => app.notifications.start() }
  // Every entry of the file is read and in flight (the loopback holds the calls until released).
  await until(t, 'all 20 replayed and in flight', () => sns.stats().replayed === 20 && sns.stats().in_flight === 20)
  // Replays asked for again, as a successful call or the periodic check would, while they are in flight.
  await Promise.all([sns.start(), sns.start(), sns.start()])
  t.equal(sns.stats().replayed, 20, 'nothing queued twice')
  release()
  await until(t, '20 published', () => sns.stats().published === 20)
  await until(t, 'the segment removed', () => journalFiles(dataDir).length === 0)
  t.equal(slow.accepted.length, 20, 'no duplicate')
  t.match(sns.stats(), { failed_calls: 0, retried: 0, replayed: 20 }, 'no error counted as an SNS failure')
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

  for (const journal of ['on', 'off']) {
    const stuck = await snsServer(t, { delayMs: 60_000 })
    const env = snsEnv(stuck.url, { NOTIFY_DRAIN_TIMEOUT_MS: '300', NOTIFY_JOURNAL: journal })
    const app = createApp({ env })
    await app.ready()
    await post(app, splitFrame(rows(15)))
    const started = Date.now()
    await app.close()
    t.ok(Date.now() - started < 3000, 'close kept to the deadline')
    t.equal(onDisk(env.NOTIFY_DATA_DIR!).length, 15, `journal ${journal}: in-flight and queued notifications on disk`)
  }
})

t.test('a row too large for a message of its own is refused (400 naming it); one too large to share a batch goes alone', async t => {
  const sns = await snsServer(t)
  const app = await build(t, snsEnv(sns.url))
  // 300 extra columns of 1,000 characters: a row of about 300 KB, over SNS's 256 KiB.
  const wide = (fill: string) => Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`note_${i}`, fill]))
  const huge = { ...attack, ...wide('x'.repeat(1000)) }
  const refused = await post(app, splitFrame([{ ...benign, ...wide('') }, huge, { ...attack, ...wide('') }]))
  t.equal(refused.statusCode, 400)
  t.match(refused.json().message, /^row 1 takes \d+ bytes as JSON, more than one notification can carry/)
  // 300 KB of whitespace between two cells is no row's size: rows are written anew, without it.
  const frame = splitFrame([attack])
  const padded = JSON.stringify(frame).replace(',', ',' + ' '.repeat(300_000))
  const answered = await post(app, padded)
  t.equal(answered.statusCode, 200)
  // Under the limit but too large to share a batch: sent alone.
  await post(app, splitFrame([{ ...attack, ...wide('x'.repeat(500)) }, { ...attack, ...wide('y'.repeat(500)) }]))
  await until(t, 'all three published', () => sns.accepted.length === 3)
  t.ok(sns.calls.some(c => c.action === 'Publish' && c.entries === 1), 'the large row went alone')
  t.equal(app.notifications.stats().sns!.dead_lettered, 0)
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
  // Closing drains every queued notification: had one been made, SNS would have it now.
  await none.close()
  t.equal(quiet.calls.length, 0)
})

t.test('a rejected request notifies nothing', async t => {
  const sns = await snsServer(t)
  const app = await build(t, snsEnv(sns.url))
  const frame = splitFrame(rows(3))
  frame.data[2] = frame.data[2].slice(1)
  t.equal((await post(app, frame)).statusCode, 400)
  await app.close()
  t.equal(sns.calls.length, 0)
})

t.test('NOTIFY_LOG_FILE appends notifications as JSON lines', async t => {
  const file = join(mkdtempSync(join(tmpdir(), 'ml-ids-log-')), 'nested', 'notifications.jsonl')
  const app = createApp({ env: { NOTIFY_LOG_FILE: file, NOTIFY_GROUPING: 'row' } })
  await app.ready()
  await post(app, splitFrame(rows(4)))
  await app.close()
  const lines = readFileSync(file, 'utf8').trim().split('\n').map(line => JSON.parse(line))
  t.equal(lines.length, 4)
  t.match(lines[1], { message: { columns: Array, index: [1], data: [Array] }, attributes: { prediction: 'attack', model: 'cic-ids2018-xgb' } })
})

t.test('NOTIFY_LOG_FILE moved or deleted by a log rotation: the lines that follow go to a new file at its path, none lost', async t => {
  const file = join(mkdtempSync(join(tmpdir(), 'ml-ids-rotate-')), 'notifications.jsonl')
  const app = createApp({ env: { NOTIFY_LOG_FILE: file, NOTIFY_GROUPING: 'row' } })
  t.teardown(() => app.close())
  await app.ready()
  const lines = (path: string) => existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []
  let answered = 0
  const send = async () => {
    t.equal((await post(app, splitFrame(rows(1)))).statusCode, 200)
    answered++
  }
  /** Sends a row every 50 ms until `done`. */
  const sendUntil = async (what: string, done: () => boolean) => {
    const started = Date.now()
    while (!done()) {
      if (Date.now() - started > 10_000) return t.fail(`timed out waiting for ${what}`)
      await send()
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  await send()
  await until(t, 'the first line', () => lines(file).length === 1)
  // logrotate's default: move the file away.
  renameSync(file, `${file}.1`)
  await sendUntil('a new file at the path', () => lines(file).length > 0)
  await until(t, 'every line in one file or the other', () => lines(`${file}.1`).length + lines(file).length === answered)
  t.ok(lines(`${file}.1`).length >= 1, 'the moved file kept the lines written before the move')
  t.ok([...lines(`${file}.1`), ...lines(file)].every(line => JSON.parse(line).attributes.prediction !== undefined), 'whole lines in both')
  // Deleted outright: its lines go with it, and the path is made again for the next ones.
  unlinkSync(file)
  await sendUntil('the file made again once deleted', () => lines(file).length > 0)
})

t.test('a NOTIFY_LOG_FILE that cannot be created stops start-up with one line naming it and the fix', async t => {
  const blocker = join(mkdtempSync(join(tmpdir(), 'ml-ids-log-')), 'a-file')
  writeFileSync(blocker, '')
  const app = createApp({ env: { NOTIFY_LOG_FILE: join(blocker, 'notifications.jsonl') } })
  await t.rejects(async () => { await app.ready() }, { name: 'ConfigError', message: /^NOTIFY_LOG_FILE .*a-file\/notifications\.jsonl cannot be appended to: (EEXIST|ENOTDIR) .*Point NOTIFY_LOG_FILE at a file/ })
  await app.close().catch(() => {})
})

t.test('a NOTIFY_LOG_FILE that fails after start-up: requests are still answered, the failure is logged once', async t => {
  const folder = join(mkdtempSync(join(tmpdir(), 'ml-ids-log-')), 'nested')
  const errors: string[] = []
  const app = createApp({ env: { NOTIFY_LOG_FILE: join(folder, 'notifications.jsonl') }, logger: { level: 'error', stream: { write: (line: string) => { errors.push(line) } } } })
  await app.ready()
  t.teardown(() => app.close())
  // The folder start-up made is replaced by a file before the first line is written.
  rmSync(folder, { recursive: true })
  writeFileSync(folder, '')
  for (let k = 0; k < 3; k++) {
    const res = await post(app, splitFrame(rows(2)))
    t.equal(res.statusCode, 200, `request ${k + 1} answered`)
  }
  // The file is opened in the background: its failure arrives after the answers.
  await until(t, 'the failure', () => errors.length > 0)
  await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(errors.length, 1, 'reported once, not per line')
  t.match(errors[0], /writing NOTIFY_LOG_FILE failed/)
})

t.test('a NOTIFY_LOG_FILE on a full disk (/dev/full): every request answered, the failure logged once, not per line', async t => {
  const errors: string[] = []
  const app = createApp({ env: { NOTIFY_LOG_FILE: '/dev/full', NOTIFY_GROUPING: 'row' }, logger: { level: 'error', stream: { write: (line: string) => { errors.push(line) } } } })
  await app.ready()
  t.teardown(() => app.close())
  for (let k = 0; k < 4; k++) {
    t.equal((await post(app, splitFrame(rows(2)))).statusCode, 200)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  await until(t, 'the failure', () => errors.length > 0)
  t.equal(errors.length, 1, 'once')
  t.match(errors[0], /ENOSPC/)
})

t.test('a NOTIFY_LOG_FILE under a folder that takes no new folders (/proc) stops start-up at once, naming it', async t => {
  const app = createApp({ env: { NOTIFY_LOG_FILE: '/proc/ml-ids-nope/notifications.jsonl' } })
  await t.rejects(async () => { await app.ready() }, { name: 'ConfigError', message: /^NOTIFY_LOG_FILE \/proc\/ml-ids-nope\/notifications\.jsonl cannot be appended to: ENOENT/ })
  await app.close().catch(() => {})
})

t.test('SNS unreachable: the warning names the socket\'s error and the address, not a bare "Error"', async t => {
  const port = await closedPort()
  const lines: string[] = []
  const app = createApp({ env: snsEnv(`http://127.0.0.1:${port}`, { NOTIFY_RETRY_BASE_MS: '1000' }), logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  await app.ready()
  t.teardown(() => app.close())
  t.equal((await post(app, splitFrame(rows(1)))).statusCode, 200)
  await until(t, 'the retry warning', () => lines.some(line => line.includes('SNS publish failed')))
  const warning = JSON.parse(lines.find(line => line.includes('SNS publish failed'))!) as { code: string, reason: string }
  t.equal(warning.code, 'ECONNREFUSED')
  t.match(warning.reason, `127.0.0.1:${port}`)
})

t.test('without SNS nothing is written to the data directory', async t => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'ml-ids-none-')), 'data')
  const app = await build(t, { NOTIFY_DATA_DIR: dataDir })
  await post(app, splitFrame(rows(2)))
  t.equal(existsSync(dataDir), false)
  t.same((await app.inject('/api/notifications/stats')).json(), { mode: 'all', grouping: 'request', journal: 'on', sns: null, stream: { subscribers: 0, emitted: 0, dropped_subscribers: 0 } })
})

const publishedRows = rowsOf

/** The body an SQS queue subscribed to the topic receives for a message: SNS's envelope, as JSON. */
const sqsBodyBytes = (m: { message: string, attributes: Record<string, { type: string, value: string }> }) => Buffer.byteLength(JSON.stringify({
  Type: 'Notification',
  MessageId: '6f8c9a8e-1b2c-4d5e-8f90-a1b2c3d4e5f6',
  TopicArn: TOPIC,
  Message: m.message,
  Timestamp: '2026-12-05T22:45:00.000Z',
  SignatureVersion: '2',
  Signature: 'S'.repeat(344),
  SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem',
  UnsubscribeURL: `https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${TOPIC}:6f8c9a8e-1b2c-4d5e-8f90-a1b2c3d4e5f6`,
  MessageAttributes: Object.fromEntries(Object.entries(m.attributes).map(([name, v]) => [name, { Type: v.type, Value: v.value }])),
}))

t.test('request grouping: one message per class per request, its rows as one split frame, index labels kept', async t => {
  const sns = await snsServer(t)
  const app = await build(t, snsEnv(sns.url, { NOTIFY_GROUPING: 'request' }))
  const frame = { ...splitFrame(rows(7), { extra: { timestamp: '21/02/2018 10:15:06' } }), index: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] }
  const res = await post(app, frame)
  const predictions: number[] = res.json()
  await until(t, 'two messages', () => sns.accepted.length === 2)
  t.equal(sns.calls.length, 1, 'one PublishBatch')
  for (const m of sns.accepted) {
    const p = m.attributes.prediction.value === 'attack' ? 1 : 0
    const mine = predictions.flatMap((q, i) => q === p ? [i] : [])
    t.same(JSON.parse(m.message), { columns: [...frame.columns, 'prediction'], index: mine.map(i => frame.index[i]), data: mine.map(i => [...frame.data[i], p]) }, `class ${p}`)
    t.same(m.attributes, {
      prediction: { type: 'String', value: p === 1 ? 'attack' : 'benign' },
      model: { type: 'String', value: 'cic-ids2018-xgb' },
      request_id: { type: 'String', value: res.headers['x-request-id'] },
      rows: { type: 'Number', value: String(mine.length) },
    })
  }
  // What the earlier service's SQS consumer does with the body, with this machine's pandas.
  const python = '/usr/bin/python3'
  if (!existsSync(python) || spawnSync(python, ['-c', 'import pandas']).status !== 0) {
    t.skip('pandas check: /usr/bin/python3 with pandas is not available here', () => {})
    return
  }
  const script = `
import io, json, sys
for line in sys.stdin:
    envelope = {"Type": "Notification", "Message": json.loads(line)["message"]}
    df = pd.read_json(io.StringIO(json.loads(json.dumps(envelope))["Message"]), orient="split")
    print(json.dumps({"index": [str(i) for i in df.index], "prediction": [int(v) for v in df["prediction"]], "columns": list(df.columns)[-1]}))
`
  const out = spawnSync(python, ['-c', 'import pandas as pd\n' + script], { input: sns.accepted.map(m => JSON.stringify({ message: m.message })).join('\n') + '\n', encoding: 'utf8' })
  t.equal(out.status, 0, out.stderr)
  const frames = out.stdout.trim().split('\n').map(line => JSON.parse(line))
  t.same(frames.map(f => f.index).flat().sort(), ['a', 'b', 'c', 'd', 'e', 'f', 'g'], 'pandas reads every row with its index label')
  for (const f of frames) t.equal(new Set(f.prediction).size, 1, 'one class per frame')
  t.same(frames.map(f => f.columns), ['prediction', 'prediction'])
})

t.test('request grouping: a class over 256 KiB is split into messages within the limit, no row lost or duplicated', async t => {
  const sns = await snsServer(t)
  const app = await build(t, snsEnv(sns.url, { NOTIFY_GROUPING: 'request' }))
  // 60 rows of about 30 KB each (30 text columns of 1,000 characters, half of them quotes, which the
  // message and then the SQS envelope each escape): about 1.8 MB of rows.
  const wide = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`note_${i}`, (i % 2 === 0 ? '"' : 'x').repeat(1000)]))
  const frame = splitFrame(rows(60).map(r => ({ ...r, ...wide })))
  const res = await post(app, frame)
  t.equal(res.statusCode, 200)
  const predictions: number[] = res.json()
  await until(t, 'all 60 rows', () => publishedRows(sns.accepted).length >= 60 && app.notifications.stats().sns?.queued === 0 && app.notifications.stats().sns?.in_flight === 0)
  t.ok(sns.accepted.length > 2, `${sns.accepted.length} messages`)
  for (const m of sns.accepted) {
    t.ok(sizeOf(m) <= 256 * 1024, `a message of ${sizeOf(m)} bytes`)
    const body = JSON.parse(m.message)
    const p = m.attributes.prediction.value === 'attack' ? 1 : 0
    t.ok(body.data.every((row: unknown[]) => row.at(-1) === p), 'the attribute is every row\'s prediction')
    t.ok(body.index.every((i: number) => predictions[i] === p), 'each row in its class')
    t.equal(m.attributes.rows.value, String(body.data.length))
  }
  const labels = publishedRows(sns.accepted)
  t.equal(labels.length, 60, 'no row duplicated')
  t.ok(sns.accepted.every(m => sqsBodyBytes(m) <= 262_144), `every SQS envelope within 262,144 bytes (largest ${Math.max(...sns.accepted.map(sqsBodyBytes))})`)
  t.equal(new Set(labels).size, 60, 'no row lost')
  t.equal(app.notifications.stats().sns?.dead_lettered, 0)
})

t.test('nowhere to keep a notification: predictions 503 and /ready 503, then recovery by themselves, every answered row published', async t => {
  const cases = [
    { name: 'journal on a full disk, SNS recovers', journal: 'on', full: true, recovery: 'sns' },
    { name: 'journal over NOTIFY_SPILL_MAX_BYTES, SNS recovers', journal: 'on', cap: '1024', recovery: 'sns' },
    { name: 'spill on a full disk, the disk recovers', journal: 'off', full: true, recovery: 'disk' },
  ]
  for (const c of cases) {
    t.comment(c.name)
    const dataDir = mkdtempSync(join(tmpdir(), 'ml-ids-full-'))
    let healthy = false
    const sns = await snsServer(t, { call: () => healthy ? undefined : { status: 503, code: 'ServiceUnavailable' } })
    const app = await build(t, snsEnv(sns.url, {
      NOTIFY_DATA_DIR: dataDir,
      NOTIFY_JOURNAL: c.journal,
      NOTIFY_MAX_ATTEMPTS: '1',
      ...(c.cap ? { NOTIFY_SPILL_MAX_BYTES: c.cap } : {}),
    }))
    // The segment the journal writes first, as a symlink: never followed (O_NOFOLLOW), so every write
    // fails (ELOOP) as on a full disk, even for root; were it followed, /dev/full would fail it with ENOSPC.
    if (c.full) symlinkSync('/dev/full', join(dataDir, 'journal-00000001.rec'))
    const answered: string[] = []
    const send = async (count: number) => {
      const res = await post(app, splitFrame(rows(count)))
      if (res.statusCode === 200) for (let i = 0; i < count; i++) answered.push(`${res.headers['x-request-id']}:${i}`)
      return res
    }
    t.equal((await send(10)).statusCode, 200, 'the request whose notifications could not be written is answered')
    await until(t, 'the notifications to be held', () => app.notifications.stats().sns!.held > 0)
    const refused = await send(10)
    t.equal(refused.statusCode, 503)
    t.equal(refused.json().code, 'NOTIFICATIONS_BACKLOGGED')
    t.ok(Number(refused.headers['retry-after']) > 0, 'Retry-After')
    // Every route that announces what it classifies is paused alike; one that announces nothing is not.
    const body = JSON.stringify(splitFrame(rows(1)))
    for (const url of ['/api/scores', '/invocations']) {
      const payload = url === '/invocations' ? `{"dataframe_split":${body}}` : body
      const res = await app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload })
      t.equal(res.json().code, 'NOTIFICATIONS_BACKLOGGED', `${url} is paused too`)
    }
    t.equal((await app.inject({ method: 'POST', url: '/api/explanations', headers: { 'content-type': 'application/json' }, payload: body })).statusCode, 200, 'explanations announce nothing: still answered')
    const ready = await app.inject('/ready')
    t.equal(ready.statusCode, 503)
    t.match(ready.json().reason, /neither published nor written/)
    const stats = app.notifications.stats().sns!
    t.equal(stats.spilled, 0, 'held notifications are never counted as spilled')
    t.ok(stats.spill_write_failures > 0, 'write failures counted')
    t.ok(stats.backlog_bytes > 0 && stats.oldest_unpublished_seconds >= 0)
    t.match((await app.inject('/metrics')).body, /mlids_notifications_spill_write_failures_total [1-9]/)

    if (c.recovery === 'sns') healthy = true
    else unlinkSync(join(dataDir, 'journal-00000001.rec'))
    await until(t, '/ready to recover', () => app.notifications.readiness().ready)
    t.equal((await app.inject('/ready')).statusCode, 200)
    t.equal((await send(10)).statusCode, 200, 'predictions are taken again')
    healthy = true
    await until(t, 'every answered row published', () => new Set(publishedRows(sns.accepted)).size >= answered.length && app.notifications.stats().sns!.queued === 0)
    const published = new Set(publishedRows(sns.accepted))
    t.same(answered.filter(row => !published.has(row)), [], `${c.name}: every answered row published at least once`)
  }
})

t.test('shutting down with SNS down and the disk refusing: the loss is logged, and no later line says everything is on disk', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ml-ids-lost-'))
  const sns = await snsServer(t, { call: () => ({ status: 503, code: 'ServiceUnavailable' }) })
  const lines: Array<{ level: number, msg: string, count?: number }> = []
  const app = createApp({
    env: { NOTIFY_SENDER: 'inline', ...snsEnv(sns.url, { NOTIFY_DATA_DIR: dataDir, NOTIFY_DRAIN_TIMEOUT_MS: '200' }) },
    logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } },
  })
  await app.ready()
  // The journal's first segment as a symlink: never followed (O_NOFOLLOW), so every write fails as on a full disk.
  symlinkSync('/dev/full', join(dataDir, 'journal-00000001.rec'))
  t.equal((await post(app, splitFrame(rows(3)))).statusCode, 200)
  await until(t, 'the notifications to be held', () => app.notifications.stats().sns!.held > 0)
  t.ok(lines.some(l => /notifications held in memory/.test(l.msg)), 'the hold is logged')
  await app.close()
  const lost = lines.findIndex(l => /neither published nor written to disk: lost/.test(l.msg))
  t.ok(lost >= 0, 'the loss is logged')
  t.ok(lines[lost].count! > 0, 'with how many')
  t.same(lines.slice(lost).filter(l => /published or on disk/.test(l.msg)).map(l => l.msg), [], 'nothing after it says every notification is published or on disk')
})

t.test('spill files of versions before the journal are published on start, then removed', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ml-ids-legacy-'))
  const legacy = (n: number) => JSON.stringify({ notification: { message: `{"columns":["a","prediction"],"index":[${n}],"data":[[${n},1]]}`, attributes: { prediction: 'attack', model: 'm', request_id: `r${n}` } }, reason: 'queue full', at: '2026-01-01T00:00:00.000Z' })
  writeFileSync(join(dataDir, 'spill.jsonl'), Array.from({ length: 150 }, (_, n) => legacy(n)).join('\n') + '\n')
  writeFileSync(join(dataDir, 'spill-1-2.replay.jsonl'), legacy(1000) + '\n')
  const sns = await snsServer(t)
  const app = await build(t, snsEnv(sns.url, { NOTIFY_DATA_DIR: dataDir }))
  await until(t, '151 published', () => app.notifications.stats().sns?.published === 151)
  t.same(sns.accepted.map(m => JSON.parse(m.message).index[0]).sort((a, b) => a - b), [...Array.from({ length: 150 }, (_, n) => n), 1000], 'each once')
  t.notOk(existsSync(join(dataDir, 'spill.jsonl')))
  await until(t, 'the journal emptied', () => journalFiles(dataDir).length === 0)
})
