import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createJournal, type JournalOptions } from '../notifications/journal.js'
import type { Notification } from '../notifications/message.js'
import { ConfigError } from '../errors.js'
import { createApp } from '../app.js'
import { PANDAS_SPLIT, splitFrame, examples } from './helper.js'
import { snsEnv, until } from './support/notifications.js'
import { snsServer } from './support/sns.js'
import { startServer } from './support/server-process.js'

const dir = () => mkdtempSync(join(tmpdir(), 'ml-ids-lock-'))
type Event = Parameters<NonNullable<JournalOptions['report']>>[0]
const open = (d: string, events: Event[] = [], extra: Partial<JournalOptions> = {}) =>
  createJournal({ dir: d, maxBytes: 1024 ** 3, segmentBytes: 16 * 1024 * 1024, fsync: false, report: e => events.push(e), ...extra })
const note = (message: string): Notification => ({ message, attributes: { prediction: 'attack', model: 'm', request_id: 'r' } })
const lockPath = (d: string) => join(d, 'journal.lock')
/** A lock file as another owner left it, `ageS` seconds since its last heartbeat. */
function writeLock (d: string, owner: unknown, ageS = 0) {
  writeFileSync(lockPath(d), typeof owner === 'string' ? owner : JSON.stringify(owner))
  const at = new Date(Date.now() - ageS * 1000)
  utimesSync(lockPath(d), at, at)
}
/** A pid that was alive on this host and is not any more (its process ran and was reaped). */
async function deadPid (): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(child, 'exit')
  return child.pid!
}

t.test('two journals on one folder: the second is refused naming the owner and the fix; the first keeps working; after a clean close the folder is free', async t => {
  const d = dir()
  const first = open(d)
  const lock = JSON.parse(readFileSync(lockPath(d), 'utf8'))
  t.match(lock, { pid: process.pid, hostname: hostname() }, 'the lock names its owner')
  t.ok(Date.parse(lock.started) > Date.now() - 10_000, 'and since when')
  t.ok(first.append([note('a')]), 'the journal writes beside its lock')
  t.throws(() => open(d), ConfigError)
  t.throws(() => open(d), {
    message: new RegExp(`^NOTIFY_DATA_DIR ${d} is in use by another process \\(pid ${process.pid} on host ${hostname()} since ${lock.started}, .*` +
      'Give each process or replica its own NOTIFY_DATA_DIR \\(in containers, a volume per replica\\)'),
  })
  t.ok(first.append([note('b')]), 'the first still writes')
  t.ok(existsSync(lockPath(d)), 'a refused start leaves the owner\'s lock alone')
  first.close()
  t.notOk(existsSync(lockPath(d)), 'a clean close removes the lock')
  const events: Event[] = []
  const second = open(d, events)
  const read: string[] = []
  for await (const { notification, ref } of second.replay()) { read.push(notification.message); second.ack([ref]) }
  t.same(read, ['a', 'b'], 'the next owner reads what the first left')
  t.same(events, [], 'a free folder: nothing taken over')
  second.close()
})

t.test('the journal scan ignores the lock file', async t => {
  const d = dir()
  writeLock(d, 'journal-00000007.rec is not this', 3600)
  const journal = open(d)
  journal.append([note('x')])
  t.ok(existsSync(join(d, 'journal-00000001.rec')), 'numbering is not moved by the lock\'s name or content')
  journal.close()
})

t.test('a lock not refreshed for 3 heartbeats is stale whatever host wrote it; a fresh one from another host is a live owner', async t => {
  const d = dir()
  const owner = { pid: process.ppid, hostname: 'elsewhere', started: '2024-01-01T00:00:00.000Z' }
  writeLock(d, owner, 10)
  t.throws(() => open(d), { message: /pid \d+ on host elsewhere since 2024-01-01T00:00:00.000Z, lock refreshed 10 s ago/ }, 'fresh (10 s < 15 s): refused')
  writeLock(d, owner, 16)
  const events: Event[] = []
  const journal = open(d, events)
  t.match(events, [{ kind: 'lock_taken_over', path: lockPath(d), reason: /not refreshed for 16 s/, owner }])
  t.match(JSON.parse(readFileSync(lockPath(d), 'utf8')), { pid: process.pid, hostname: hostname() }, 'the lock is ours now')
  journal.close()
})

t.test('a lock file that does not parse is stale only by its age', async t => {
  for (const text of ['', 'not json', '{"pid":0,"hostname":"x","started":"y"}', JSON.stringify({ pid: -1, hostname: hostname(), started: 'y' })]) {
    const d = dir()
    writeLock(d, text, 1)
    t.throws(() => open(d), { message: /in use by another process \(an unreadable journal\.lock, lock refreshed 1 s ago\)/ }, `${JSON.stringify(text)} fresh: refused`)
    writeLock(d, text, 20)
    const events: Event[] = []
    open(d, events).close()
    t.match(events, [{ kind: 'lock_taken_over', owner: undefined }], `${JSON.stringify(text)} old: taken over`)
  }
})

t.test('this host: a dead pid is stale at once, a live one is an owner, this very pid (a restart as PID 1) is stale', async t => {
  const d = dir()
  const pid = await deadPid()
  writeLock(d, { pid, hostname: hostname(), started: '2024-01-01T00:00:00.000Z' })
  const events: Event[] = []
  open(d, events).close()
  t.match(events, [{ kind: 'lock_taken_over', reason: `pid ${pid} is not running on this host` }], 'a process killed here: taken over at once')

  writeLock(d, { pid: process.ppid, hostname: hostname(), started: '2024-01-01T00:00:00.000Z' })
  t.throws(() => open(d), { message: new RegExp(`pid ${process.ppid} on host`) }, 'a live process here: refused')

  writeLock(d, { pid: process.pid, hostname: hostname(), started: '2024-01-01T00:00:00.000Z' })
  const again: Event[] = []
  open(d, again).close()
  t.match(again, [{ kind: 'lock_taken_over', reason: /this very process/ }], 'this pid, not held by this process: an earlier life, taken over')
})

t.test('this host: an owner killed a moment ago and not yet collected by its parent (a zombie) is dead', async t => {
  // The shell becomes `sleep 5` (exec) before its child `sleep 0.5` exits, and `sleep` never collects
  // a child: a zombie until the 5 s are up. (Exiting before the exec, the shell would collect it.)
  const parent = spawn('/bin/sh', ['-c', 'sleep 0.5 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => { parent.kill('SIGKILL') })
  const pid = Number(String((await once(parent.stdout!, 'data'))[0]).trim())
  await until(t, 'the zombie', () => { try { return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')) } catch { return false } })
  t.doesNotThrow(() => process.kill(pid, 0), 'kill(pid, 0) still finds it')
  const d = dir()
  writeLock(d, { pid, hostname: hostname(), started: '2024-01-01T00:00:00.000Z' })
  const events: Event[] = []
  open(d, events).close()
  t.match(events, [{ kind: 'lock_taken_over', reason: `pid ${pid} is not running on this host` }])
})

t.test('the owner refreshes its lock: past 3 heartbeats it is still not stale; a lock removed under it is reported', async t => {
  const d = dir()
  const events: Event[] = []
  const owner = open(d, events, { lockHeartbeatMs: 40 })
  // Another host's lock, as far as a second opener can tell, kept fresh only by the owner's heartbeat.
  writeFileSync(lockPath(d), JSON.stringify({ pid: 1, hostname: 'elsewhere', started: 'then' }))
  await sleep(400)
  t.ok(Date.now() - statSync(lockPath(d)).mtimeMs < 200, 'touched within the last heartbeats')
  t.throws(() => open(d, [], { lockHeartbeatMs: 40 }), { message: /pid 1 on host elsewhere/ }, '10 heartbeats on, still owned')
  unlinkSync(lockPath(d))
  await until(t, 'the lost lock to be reported', () => events.some(e => e.kind === 'lock_lost'), 2000)
  t.match(events, [{ kind: 'lock_lost', path: lockPath(d) }])
  owner.close()
})

t.test('two apps on one folder: the second does not start (ConfigError), the first keeps publishing, a third starts after the first closes', async t => {
  const sns = await snsServer(t)
  const env = snsEnv(sns.url)
  const first = createApp({ env: { NOTIFY_SENDER: 'inline', ...env } })
  t.teardown(() => first.close())
  await first.ready()
  const second = createApp({ env: { NOTIFY_SENDER: 'inline', ...env } })
  await t.rejects(async () => { await second.ready() }, { name: 'ConfigError', message: new RegExp(`^NOTIFY_DATA_DIR ${env.NOTIFY_DATA_DIR} is in use by another process \\(pid ${process.pid}`) })
  await second.close().catch(() => {})
  const res = await first.inject({ method: 'POST', url: '/api/predictions', headers: { 'content-type': PANDAS_SPLIT }, payload: splitFrame([examples.attack]) })
  t.equal(res.statusCode, 200, 'the first still answers')
  await until(t, 'its notification published', () => sns.accepted.length === 1)
  await first.close()
  const third = createApp({ env: { NOTIFY_SENDER: 'inline', ...env } })
  t.teardown(() => third.close())
  await third.ready()
  t.pass('the folder is free once the first closed')
})

t.test('real processes: a second server on the folder exits 1 with one line, the first still answers; after a SIGKILL the next start takes over at once', async t => {
  const sns = await snsServer(t)
  const env = snsEnv(sns.url, { PORT: '0', HOST: '127.0.0.1' })
  const first = startServer(env)
  t.teardown(() => { first.child.kill('SIGKILL') })
  const url = await first.listening
  const second = startServer(env, { coverage: false })
  t.teardown(() => { second.child.kill('SIGKILL') })
  // Were it to start, it would listen, not exit: the test fails at once rather than wait.
  const code = await Promise.race([once(second.child, 'exit').then(([c]) => c as number), second.listening.then(() => 'listening', async () => await new Promise<never>(() => {}))])
  t.equal(code, 1, 'the second exits 1')
  // Start-up info lines (the classifier ready) come first; the failure is one line, at fatal.
  const lines = second.output().trim().split('\n').filter(line => !line.startsWith('{"level":30,'))
  t.equal(lines.length, 1, `one line: ${second.output()}`)
  t.match(lines[0], /^\{"level":60,/)
  t.match(lines[0], `could not start: NOTIFY_DATA_DIR ${env.NOTIFY_DATA_DIR} is in use by another process (pid ${first.child.pid} on host ${hostname()}`)
  t.notMatch(second.output(), /\n\s+at |"stack"/, 'no stack trace: a configuration problem')
  const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: JSON.stringify(splitFrame([examples.attack])) })
  t.equal(res.status, 200, 'the first still answers')
  await until(t, 'its notification published', () => sns.accepted.length === 1)

  first.child.kill('SIGKILL')
  await once(first.child, 'exit')
  t.ok(existsSync(lockPath(env.NOTIFY_DATA_DIR!)), 'a crash leaves the lock')
  const began = Date.now()
  const third = startServer(env, { coverage: false })
  t.teardown(() => { third.child.kill('SIGKILL') })
  await third.listening
  t.ok(Date.now() - began < 10_000, 'no wait for the lock to age: the dead pid on this host frees it')
  t.match(third.output(), new RegExp(`"level":40,.*"reason":"pid ${first.child.pid} is not running on this host".*journal folder lock left by a process that is gone taken over`))
})
