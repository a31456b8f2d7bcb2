import t from 'tap'
import fc from 'fast-check'
import { appendFileSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createJournal, MAX_RECORD_BODY_BYTES, type JournalOptions, type JournalRef } from '../notifications/journal.js'
import type { Notification } from '../notifications/message.js'
import { encodeRecord, readBoundedLines } from '../notifications/records.js'
import { segmentRecords } from './support/journal.js'
import { startServer } from './support/server-process.js'
import { createApp } from '../app.js'

const dir = () => mkdtempSync(join(tmpdir(), 'ml-ids-journal-'))
const open = (d: string, extra: Partial<JournalOptions> = {}) => createJournal({ dir: d, maxBytes: 1024 ** 3, segmentBytes: 16 * 1024 * 1024, fsync: false, ...extra })
const note = (message: string, id = 'r'): Notification => ({ message, attributes: { prediction: 'attack', model: 'm', request_id: id } })

/** Everything a journal reopened on `d` reads back, and what it reported. */
async function reread (d: string) {
  const events: unknown[] = []
  const journal = open(d, { report: e => events.push(e) })
  const read: Notification[] = []
  const refs: JournalRef[] = []
  // Held while reading (as the queue holds them): a released segment is listed for replay again.
  for await (const { notification, ref } of journal.replay()) {
    read.push(notification)
    refs.push(ref)
  }
  journal.release(refs, Date.now())
  return { read, events, stats: journal.stats(), journal }
}

t.test('any message survives the framing: newlines, CR, quotes, U+2028, emoji, empty, near the limit', async t => {
  const d = dir()
  const messages = ['{"a":1}', 'line\nbreak\r\n', '"\\', '\u2028\u2029', '😀é', '', 'x'.repeat(MAX_RECORD_BODY_BYTES - 200), '\xff\x00']
  const journal = open(d)
  t.ok(journal.append(messages.map((m, k) => note(m, `r${k}`))))
  journal.close()
  const { read, stats } = await reread(d)
  t.same(read.map(n => n.message), messages, 'each read back byte for byte, in order')
  t.same(read.map(n => n.attributes.request_id), messages.map((_, k) => `r${k}`))
  t.equal(stats.damaged_records, 0)
  t.same(segmentRecords(join(d, 'journal-00000001.rec')).map(r => r.message), messages, 'the documented layout, decoded independently')
})

t.test('a record over the limit is refused on write, and nothing of its batch is written', async t => {
  const d = dir()
  const journal = open(d)
  t.equal(journal.append([note('ok'), note('x'.repeat(MAX_RECORD_BODY_BYTES + 1))]), undefined)
  t.equal(journal.lastFailure?.code, 'TOO_LARGE')
  t.equal(journal.stats().bytes, 0)
  t.ok(journal.append([note('ok')]), 'the next write goes through')
})

t.test('torn and corrupt records are skipped, counted and reported once, never taking their neighbours', async t => {
  const d = dir()
  const path = join(d, 'journal-00000001.rec')
  const records = Array.from({ length: 6 }, (_, k) => encodeRecord(k, JSON.stringify(note('').attributes), `{"n":${k}}`))
  // Record 1 with a flipped body byte, garbage between 2 and 3, record 4 with a length field of 4 GiB, record 5 torn.
  const flipped = Buffer.from(records[1])
  flipped[flipped.length - 2] ^= 0x20
  const huge = Buffer.from(records[4])
  huge.writeUInt32LE(0xffffffff, 4)
  writeFileSync(path, Buffer.concat([records[0], flipped, records[2], Buffer.from('garbage \xff\x4a\x52 and more'), records[3], huge, records[5].subarray(0, 20)]))
  appendFileSync(path, Buffer.concat([encodeRecord(6, JSON.stringify(note('').attributes), '{"n":6}'), records[5].subarray(0, 10)]))
  const { read, events, stats, journal } = await reread(d)
  t.same(read.map(n => JSON.parse(n.message).n), [0, 2, 3, 6], 'every intact record, before and after the damage')
  t.equal(stats.damaged_records, 5, 'the flipped byte, the garbage, the bad length, the torn record inside the file, the torn tail')
  t.match(events, [{ kind: 'damaged', path, regions: 5 }])
  // Read again (its records went back to disk): the damage is not reported twice.
  const again: number[] = []
  for await (const { notification, ref } of journal.replay()) {
    again.push(JSON.parse(notification.message).n)
    journal.ack([ref])
  }
  t.same(again, [0, 2, 3, 6])
  t.equal(events.length, 1, 'reported once')
  t.equal(journal.stats().damaged_records, 5)
})

t.test('a 200 MB segment of junk is scanned without building a string past the limit', async t => {
  const d = dir()
  const path = join(d, 'journal-00000001.rec')
  const fd = openSync(path, 'w')
  ftruncateSync(fd, 200 * 1024 * 1024) // sparse: no disk used
  closeSync(fd)
  appendFileSync(path, encodeRecord(0, JSON.stringify(note('').attributes), 'after the junk'))
  const { read, stats } = await reread(d)
  t.same(read.map(n => n.message), ['after the junk'])
  t.equal(stats.damaged_records, 1)
})

t.test('acknowledgement lines are ids as the journal writes them: 1e300, 4294967297, -0 or " 1" acknowledge nothing', async t => {
  const d = dir()
  const journal = open(d)
  journal.append([note('a'), note('b'), note('c')])
  journal.close()
  writeFileSync(join(d, 'journal-00000001.acks'), ['1e300', '4294967297', '-0', ' 1', '0x1', '2', 'x'.repeat(100000), ''].join('\n'))
  const { read } = await reread(d)
  t.same(read.map(n => n.message), ['a', 'b'], 'only the valid id 2 acknowledges its record')
})

t.test('only regular files: symlinks are never followed, for reading or writing', async t => {
  const d = dir()
  const outside = dir()
  // A foreign file with a valid record, linked in as a segment: never read.
  writeFileSync(join(outside, 'foreign.rec'), encodeRecord(0, JSON.stringify(note('').attributes), 'foreign'))
  symlinkSync(join(outside, 'foreign.rec'), join(d, 'journal-00000002.rec'))
  symlinkSync(join(outside, 'missing'), join(d, 'journal-00000003.rec')) // dangling
  symlinkSync(join(d, 'journal-00000005.rec'), join(d, 'journal-00000004.rec')) // a loop
  symlinkSync(join(d, 'journal-00000004.rec'), join(d, 'journal-00000005.rec'))
  const own = open(d)
  own.append([note('own')])
  own.close()
  const { read, journal } = await reread(d)
  t.same(read.map(n => n.message), ['own'], 'the foreign file is not published; the dangling link and the loop end nothing')
  // The segment written next: its acknowledgement file is a link to a file outside: never appended to.
  const refs = journal.append([note('next')])!
  const segment = readdirSync(d).filter(f => f.endsWith('.rec') && !existsSync(join(d, f.replace('.rec', '.acks')))).sort().at(-1)!
  writeFileSync(join(outside, 'acks'), '')
  symlinkSync(join(outside, 'acks'), join(d, segment.replace('.rec', '.acks')))
  journal.ack(refs)
  t.equal(readFileSync(join(outside, 'acks'), 'utf8'), '', 'nothing written through the link')
  t.equal(journal.stats().ack_write_failures, 1)
})

t.test('a segment that cannot be read is skipped, reported once, and does not block later ones', async t => {
  const d = dir()
  const first = open(d)
  first.append([note('one')])
  first.close()
  const second = open(d)
  second.append([note('two')])
  second.close()
  const events: Array<{ kind: string }> = []
  const journal = open(d, { report: e => events.push(e) })
  // Replaced by a folder after the start-up scan listed it: opening works, reading fails (EISDIR).
  rmSync(join(d, 'journal-00000001.rec'))
  mkdirSync(join(d, 'journal-00000001.rec'))
  const read: string[] = []
  for (let pass = 0; pass < 3; pass++) {
    for await (const { notification, ref } of journal.replay()) {
      read.push(notification.message)
      journal.ack([ref])
    }
  }
  t.same(read, ['two'], 'the later segment is read')
  t.match(events, [{ kind: 'unreadable' }], 'reported once, however many passes')
  t.equal(journal.stats().unreadable_now, 1)
  t.equal(journal.hasReplayable(), false, 'not retried before UNREADABLE_RETRY_MS: no spinning')
})

t.test('readBoundedLines skips an overlong line unread and keeps the lines around it', async t => {
  const path = join(dir(), 'lines')
  writeFileSync(path, `a\r\n${'x'.repeat(300000)}\nb\n${'y'.repeat(20)}`)
  let tooLong = 0
  const lines: string[] = []
  for await (const line of readBoundedLines(path, 100, () => { tooLong++ })) lines.push(line)
  t.same(lines, ['a', 'b', 'y'.repeat(20)])
  t.equal(tooLong, 1)
})

t.test('a folder the service cannot use is a clear start-up error naming the path and the fix', async t => {
  const file = join(dir(), 'not-a-folder')
  writeFileSync(file, '')
  const env = {
    AWS_SNS_PREDICTIONS_TOPIC: 'arn:aws:sns:eu-west-1:123456789012:ml-ids-predictions',
    AWS_SNS_HOST: 'http://127.0.0.1:9',
    AWS_ACCESS_KEY: 'AKIDEXAMPLE',
    AWS_SECRET_KEY: 'secret',
  }
  for (const [what, path] of [['a file', file], ['a path under a file', join(file, 'data')]]) {
    const app = createApp({ env: { ...env, NOTIFY_DATA_DIR: path } })
    await t.rejects(async () => { await app.ready() }, { message: new RegExp(`^NOTIFY_DATA_DIR ${path} cannot hold the notification journal: .*Point NOTIFY_DATA_DIR at a folder`) }, what)
    await app.close().catch(() => {})
  }
  // The server itself: exits, saying so.
  const server = startServer({ ...env, NOTIFY_DATA_DIR: file, PORT: '0' })
  const exited = await new Promise<number | null>(resolve => server.child.on('exit', resolve))
  t.not(exited, 0, 'the process exits with an error')
  t.match(server.output(), `NOTIFY_DATA_DIR ${file} cannot hold the notification journal`)
  t.notMatch(server.output(), /\n\s+at /, 'one line, no stack trace: a configuration problem')
})

/**
 * Model-based (fast-check commands): random appends, acknowledgements, releases, replay passes and
 * reopenings from disk. The model is the set of messages appended and not acknowledged; after every
 * command, a journal reopened from the folder reads back exactly that set (none lost, none acknowledged
 * returning), and every ref handed out is given back once (acked or released).
 */
interface Real { d: string, journal: ReturnType<typeof open>, held: Map<string, JournalRef>, next: number }
interface Model { pending: Set<string> }
type Command = fc.AsyncCommand<Model, Real>

const appendCmd = (count: number): Command => ({
  check: () => true,
  async run (m, r) {
    const notes = Array.from({ length: count }, () => note(`m${r.next++}\n"x"`))
    const refs = r.journal.append(notes)!
    notes.forEach((n, k) => { r.held.set(n.message, refs[k]); m.pending.add(n.message) })
  },
  toString: () => `append(${count})`,
})
const settleCmd = (ack: boolean, pick: number): Command => ({
  check: () => true,
  async run (m, r) {
    const chosen = [...r.held.entries()].filter((_, k) => k % 3 === pick % 3)
    for (const [message, ref] of chosen) {
      r.held.delete(message)
      if (ack) {
        r.journal.ack([ref])
        m.pending.delete(message)
      } else {
        r.journal.release([ref], Date.now())
      }
    }
  },
  toString: () => `${ack ? 'ack' : 'release'}(${pick % 3})`,
})
const replayCmd: Command = {
  check: () => true,
  async run (m, r) {
    for await (const { notification, ref } of r.journal.replay()) {
      if (r.held.has(notification.message)) throw new Error(`${notification.message} read back while held`)
      if (!m.pending.has(notification.message)) throw new Error(`${notification.message} read back after its ack`)
      r.held.set(notification.message, ref)
    }
  },
  toString: () => 'replay',
}
const reopenCmd: Command = {
  check: () => true,
  async run (m, r) {
    // A restart: what was held in memory is gone; the folder is all there is.
    r.journal.close()
    r.held.clear()
    r.journal = open(r.d)
    const read = new Set<string>()
    const refs: JournalRef[] = []
    for await (const { notification, ref } of r.journal.replay()) {
      read.add(notification.message)
      refs.push(ref)
    }
    if ([...read].sort().join() !== [...m.pending].sort().join()) throw new Error(`read back ${[...read]} but pending ${[...m.pending]}`)
    refs.forEach(ref => r.journal.release([ref], Date.now()))
  },
  toString: () => 'reopen',
}

t.test('model-based: whatever the interleaving, a reopened journal reads back exactly what is not acknowledged', async t => {
  const commands = [
    fc.integer({ min: 1, max: 5 }).map(appendCmd),
    fc.tuple(fc.boolean(), fc.nat()).map(([ack, pick]) => settleCmd(ack, pick)),
    fc.constant(replayCmd),
    fc.constant(reopenCmd),
  ]
  await fc.assert(fc.asyncProperty(fc.commands(commands, { maxCommands: 30 }), async cmds => {
    const d = dir()
    const real: Real = { d, journal: open(d, { segmentBytes: 400 }), held: new Map(), next: 0 }
    await fc.asyncModelRun(() => ({ model: { pending: new Set<string>() }, real }), [...cmds, reopenCmd])
    if (real.journal.stats().ref_errors !== 0) throw new Error(`${real.journal.stats().ref_errors} refs given back twice`)
    real.journal.close()
    rmSync(d, { recursive: true, force: true })
  }), { numRuns: 60 })
})

t.test('every ref is acked or released exactly once: a second give-back or a foreign ref changes nothing and is counted', async t => {
  const d = dir()
  const events: Array<{ kind: string }> = []
  const journal = open(d, { report: e => events.push(e) })
  const [a, b] = journal.append([note('a'), note('b')])!
  journal.ack([a])
  journal.ack([a])
  journal.release([a], Date.now())
  t.equal(journal.stats().ref_errors, 2, 'an acked ref acked or released again: counted')
  t.same(events.map(e => e.kind), ['ref_error', 'ref_error'], 'and reported')
  // `b` is still in memory: a replay must not read it back, however often `a` was given back.
  const early: string[] = []
  for await (const { notification } of journal.replay()) early.push(notification.message)
  t.same(early, [], 'b is not read back while held: the double give-backs did not lower its segment\'s count')
  journal.release([b], Date.now())
  journal.release([b], Date.now())
  t.equal(journal.stats().ref_errors, 3, 'a released ref released again: counted')
  const other = open(dir())
  const [foreign] = other.append([note('c')])!
  journal.ack([foreign])
  t.equal(journal.stats().ref_errors, 4, 'a ref from another journal: counted')
  const read: Notification[] = []
  const refs: JournalRef[] = []
  for await (const { notification, ref } of journal.replay()) { read.push(notification); refs.push(ref) }
  t.same(read.map(n => n.message), ['b'], 'b read back once, a (acked) never')
  journal.ack(refs)
  t.equal(journal.stats().ref_errors, 4, 'a replayed ref acked once: fine')
  journal.close()
  other.close()
})
