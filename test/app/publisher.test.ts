import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApp } from '../../app.js'
import { build, post, splitFrame } from '../helper.js'
import { snsServer } from '../support/sns.js'
import { journalFiles, onDisk, rowsOf } from '../support/journal.js'
import { rows, snsEnv, until } from '../support/notifications.js'

/** The publisher's delivery guarantees (issue 19): migration, confirmation, replay on time, the dead-letter cap. */

const publishedRows = rowsOf

t.test('segments of the line-based journal are migrated on start: unacknowledged records published, files removed', async t => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ml-ids-migrate-'))
  const line = (n: number) => JSON.stringify({ i: n, a: { prediction: 'attack', model: 'm', request_id: `old${n}` }, m: { columns: ['a', 'prediction'], index: [n], data: [[n, 1]] } })
  // Records 0-9; 2 and 5 acknowledged; acknowledgement lines that must acknowledge nothing; a cut line
  // and a line past the size limit (never read whole) between records.
  writeFileSync(join(dataDir, 'journal-00000003.jsonl'), [0, 1, 2, 3, 4].map(line).join('\n') + '\n{"i":99,"a":{"pre\n' + 'x'.repeat(1_200_000) + '\n' + [5, 6, 7, 8, 9].map(line).join('\n') + '\n')
  writeFileSync(join(dataDir, 'journal-00000003.acks'), '2\n5\n1e300\n4294967296\n')
  const sns = await snsServer(t)
  const app = await build(t, snsEnv(sns.url, { NOTIFY_DATA_DIR: dataDir }))
  await until(t, '8 published', () => app.notifications.stats().sns?.published === 8)
  t.same(sns.accepted.map(m => JSON.parse(m.message).index[0]).sort((a, b) => a - b), [0, 1, 3, 4, 6, 7, 8, 9], 'each unacknowledged record once')
  t.same(JSON.parse(sns.accepted[0].message).columns, ['a', 'prediction'], 'the message as it was')
  t.notOk(existsSync(join(dataDir, 'journal-00000003.jsonl')), 'the old segment removed')
  t.notOk(existsSync(join(dataDir, 'journal-00000003.acks')))
  await until(t, 'the journal emptied', () => journalFiles(dataDir).length === 0)
  await post(app, splitFrame(rows(1)))
  t.ok(journalFiles(dataDir).every(f => Number(/\d+/.exec(f)![0]) > 3), 'new segments numbered past the old ones')
})

t.test('only entries SNS confirms count as published: empty answers and entries in neither list are retried', async t => {
  for (const c of ['empty answers', 'omitted entries'] as const) {
    const omittedOnce = new Set<string>()
    const sns = await snsServer(t, {
      unconfirmed: call => c === 'empty answers' && call.number <= 4 ? 'empty' : undefined,
      // Each row's message is left out of the answer once, as a lossy SNS answer would.
      omit: entry => c === 'omitted entries' && !omittedOnce.has(entry.message) && omittedOnce.add(entry.message) !== undefined,
    })
    const app = await build(t, snsEnv(sns.url, { NOTIFY_GROUPING: 'row' }))
    const res = await post(app, splitFrame(rows(15)))
    t.equal(res.statusCode, 200)
    await until(t, 'every row confirmed', () => new Set(publishedRows(sns.accepted)).size === 15 && app.notifications.stats().sns!.queued + app.notifications.stats().sns!.in_flight === 0)
    const stats = app.notifications.stats().sns!
    t.equal(stats.published, sns.accepted.length, `${c}: published counts exactly the confirmed entries`)
    t.ok(stats.retried > 0, `${c}: the unconfirmed were retried`)
    t.same(new Set(publishedRows(sns.accepted)).size, 15, `${c}: every answered row confirmed`)
  }
})

t.test('replay runs on time: after an outage, what went to disk is published with no new request', async t => {
  let healthy = false
  const sns = await snsServer(t, { call: () => healthy ? undefined : { status: 503, code: 'ServiceUnavailable' } })
  const app = await build(t, snsEnv(sns.url, { NOTIFY_MAX_ATTEMPTS: '2', NOTIFY_RETRY_MAX_MS: '300' }))
  for (let k = 0; k < 3; k++) t.equal((await post(app, splitFrame(rows(2)))).statusCode, 200)
  await until(t, 'all six on disk', () => app.notifications.stats().sns!.spilled >= 6 && app.notifications.stats().sns!.queued === 0)
  const callsWhileDown = sns.calls.length
  healthy = true
  const recovered = Date.now()
  // No request from here on: the tick replays once the backoff (at most NOTIFY_RETRY_MAX_MS) has passed.
  await until(t, 'six published', () => new Set(publishedRows(sns.accepted)).size === 6, 5000)
  t.ok(Date.now() - recovered < 300 + 1000 + 2000, `published ${Date.now() - recovered} ms after recovery (bound: NOTIFY_RETRY_MAX_MS + a tick, plus the calls)`)
  t.ok(callsWhileDown > 0)
  t.equal(app.notifications.stats().sns!.replayed >= 6, true, 'read back from disk')
})

t.test('while SNS stays down the replay does not spin: disk reads follow the backoff, and close is prompt', async t => {
  const sns = await snsServer(t, { call: () => ({ status: 503, code: 'ServiceUnavailable' }) })
  const env = snsEnv(sns.url, { NOTIFY_MAX_ATTEMPTS: '1', NOTIFY_RETRY_BASE_MS: '200', NOTIFY_RETRY_MAX_MS: '400' })
  const app = createApp({ env })
  await app.ready()
  await post(app, splitFrame(rows(4)))
  await until(t, 'all four on disk', () => app.notifications.stats().sns!.spilled >= 4)
  await new Promise(resolve => setTimeout(resolve, 1000)) // the sender thread has started
  const cpu = process.cpuUsage()
  const replayedBefore = app.notifications.stats().sns!.replayed
  await new Promise(resolve => setTimeout(resolve, 3000))
  const replays = app.notifications.stats().sns!.replayed - replayedBefore
  const used = process.cpuUsage(cpu)
  // At most one pass a tick (1 s) over 4 records: a spinning loop would read thousands.
  t.ok(replays <= 4 * 5, `${replays} records read back in 3 s`)
  t.ok((used.user + used.system) / 1000 < 600, `${Math.round((used.user + used.system) / 1000)} ms of CPU in 3 s`)
  const started = Date.now()
  await app.close()
  t.ok(Date.now() - started < 3000, 'close is prompt')
  t.equal(onDisk(env.NOTIFY_DATA_DIR!).length, 4, 'all still on disk')
})

t.test('the dead-letter file is capped: past NOTIFY_DEAD_LETTER_MAX_BYTES refusals are counted and logged, not kept', async t => {
  const sns = await snsServer(t, { entry: () => ({ code: 'InvalidParameter', senderFault: true }) })
  const env = snsEnv(sns.url, { NOTIFY_DEAD_LETTER_MAX_BYTES: '6000' })
  const app = await build(t, env)
  await post(app, splitFrame(rows(10)))
  await until(t, 'ten refusals settled', () => app.notifications.stats().sns!.dead_lettered + app.notifications.stats().sns!.dead_letter_refused === 10)
  const stats = app.notifications.stats().sns!
  t.ok(stats.dead_lettered > 0 && stats.dead_letter_refused > 0, `${stats.dead_lettered} kept, ${stats.dead_letter_refused} refused`)
  t.ok(stats.dead_letter_bytes <= 6000, `${stats.dead_letter_bytes} bytes kept`)
  t.match((await app.inject('/metrics')).body, /mlids_notifications_total\{outcome="dead_letter_refused"\} [1-9]/)
  await app.close()
  const file = join(env.NOTIFY_DATA_DIR!, 'dead-letter.jsonl')
  t.equal(readFileSync(file).length, stats.dead_letter_bytes, 'the file is what the stats say')
  t.equal(readFileSync(file, 'utf8').trim().split('\n').length, stats.dead_lettered)
})

t.test('the dead-letter file is never written through a symlink', async t => {
  const sns = await snsServer(t, { entry: () => ({ code: 'InvalidParameter', senderFault: true }) })
  const env = snsEnv(sns.url)
  const outside = join(mkdtempSync(join(tmpdir(), 'ml-ids-outside-')), 'victim')
  writeFileSync(outside, '')
  symlinkSync(outside, join(env.NOTIFY_DATA_DIR!, 'dead-letter.jsonl'))
  const app = await build(t, env)
  await post(app, splitFrame(rows(2)))
  await until(t, 'two refusals', () => app.notifications.stats().sns!.dead_lettered === 2)
  await app.close()
  t.equal(readFileSync(outside, 'utf8'), '', 'nothing written outside the folder')
})
