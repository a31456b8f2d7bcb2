import { setMaxListeners } from 'node:events'
import { lstatSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { createJournal, UNREADABLE_RETRY_MS, type JournalRef } from './journal.js'
import { createJsonLinesFile } from './jsonl-file.js'
import { importLegacy } from './legacy.js'
import { envelopeBytes, fitsOnTheWire, MAX_BATCH_ENTRIES, MAX_PAYLOAD_BYTES, payloadBytes, type Notification } from './message.js'
import { createQueue, type QueueEntry } from './queue.js'
import type { Sender } from './sender.js'

export interface SnsPublisherOptions {
  /** Makes the SNS calls (sender.ts, or sender-thread.ts for calls off the event loop). */
  sender: Sender
  /** Where the journal (or spill) and the dead letters are kept. */
  dataDir: string
  /** `on`: every notification is journaled before its response; `fsync`: and flushed to the disk; `off`: only spilled. */
  journal: 'on' | 'fsync' | 'off'
  /** Cap on the journal's files. */
  spillMaxBytes: number
  /** Cap on the dead-letter file: past it, refused notifications are counted and logged, not kept. */
  deadLetterMaxBytes?: number
  /** Notifications held in memory (queued and in flight) before new ones are left on disk. */
  queueSize: number
  /** SNS calls in flight at once. */
  concurrency: number
  /** How long a notification may wait for others to fill its batch (fewer, fuller calls). */
  lingerMs: number
  /** Attempts per notification before it leaves memory for a later replay. */
  maxAttempts: number
  retryBaseMs: number
  retryMaxMs: number
  drainTimeoutMs: number
  log: FastifyBaseLogger
  /** How often held notifications are retried on disk and idle journal segments compacted. */
  tickMs?: number
}

/**
 * Where a notification is in its life (see the table in createSnsPublisher's comment). One field,
 * changed only through `transition`, which refuses a change the table does not list.
 */
export type NotificationState = 'new' | 'journaled' | 'queued' | 'in_flight' | 'held' | 'on_disk' | 'confirmed' | 'dead_lettered' | 'lost'

/** The changes a notification may go through: from each state, the states it may go to. */
export const TRANSITIONS: Readonly<Record<NotificationState, readonly NotificationState[]>> = {
  new: ['journaled', 'queued', 'held', 'on_disk', 'dead_lettered', 'lost'],
  journaled: ['queued', 'on_disk'],
  queued: ['in_flight', 'held', 'on_disk', 'lost'],
  in_flight: ['queued', 'held', 'on_disk', 'confirmed', 'dead_lettered', 'lost'],
  held: ['queued', 'on_disk', 'confirmed', 'dead_lettered', 'lost'],
  on_disk: ['queued'],
  confirmed: [],
  dead_lettered: [],
  lost: [],
}

type Entry = QueueEntry<JournalRef> & { state: NotificationState }

export class IllegalTransitionError extends Error {}

const SEGMENT_BYTES = 16 * 1024 * 1024

/** Full jitter: a random delay up to the exponential bound, so retrying instances do not march in step. */
function backoff (attempt: number, baseMs: number, maxMs: number): number {
  return Math.random() * Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
}

/**
 * Publishes notifications to an SNS topic in the background, and loses none it was given:
 * - the journal (journal.ts) has each one on disk before its response is sent (or, with the journal
 *   off, once it cannot stay in memory), and learns which SNS accepted;
 * - the queue (queue.ts) batches and paces calls, with a bounded share for replayed notifications;
 * - the sender (sender.ts) makes one call and reads SNS's answer.
 * A notification that can be neither published nor written to disk is "held": kept in memory and
 * retried, and while any is, `readiness()` is false and the service refuses new predictions.
 * Delivery is at least once: SNS standard topics have no deduplication.
 *
 * A notification's life, `entry.state` (`ref` is only the handle of its journal record):
 *
 *   from       to             when                                                   journal
 *   new        journaled      publish(): appended before the response                append
 *   new        queued         publish() with NOTIFY_JOURNAL=off: memory only          -
 *   new        held           publish(): the append failed (disk full, over the cap)  -
 *   new        on_disk        publish(): queue full or closing; written if need be    (append +) release
 *   new        dead_lettered  publish(): over the wire limits, never journaled        -
 *   new        lost           closing after the abort and the disk refuses it         -
 *   journaled  queued         publish(): room in the queue                           -
 *   journaled  on_disk        publish(): queue full or closing                       release
 *   queued     in_flight      the queue put it in an SNS call                        -
 *   queued     on_disk        close(): left in the queue at the deadline             (append +) release
 *   queued     held / lost    close() with NOTIFY_JOURNAL=off and the disk refusing   -
 *   in_flight  queued         not confirmed (failed, throttled, omitted, empty answer): retried later
 *   in_flight  confirmed      SNS listed it in `Successful` (or gave a MessageId)     ack
 *   in_flight  dead_lettered  SNS refused it for good                                ack
 *   in_flight  on_disk        maxAttempts reached, or shutting down                  (append +) release
 *   in_flight  held / lost    as on_disk, with NOTIFY_JOURNAL=off and the disk refusing
 *   held       queued         tick: a queued held entry written at last              append
 *   held       confirmed / dead_lettered   as from in_flight (a held entry is sent while held)  -
 *   held       on_disk        shutting down, and the disk takes it now               append + release
 *   held       lost           shutting down, and the disk still refuses it           -
 *   on_disk    queued         replay: read back from the journal (a new entry)       (resident again)
 *   confirmed, dead_lettered, lost: final.
 *
 * A held entry stays `held` in the queue and in an SNS call alike (it is what keeps `readiness()`
 * false); it never leaves memory for `on_disk` while the disk refuses it, whatever its attempts.
 * Every journal ref is given back once: ack on confirmed/dead_lettered, release on on_disk; as the
 * final states cannot be left, no ref is acked or released twice.
 */
export function createSnsPublisher (opts: SnsPublisherOptions) {
  const { log } = opts
  const journaling = opts.journal !== 'off'
  const journal = createJournal({
    dir: opts.dataDir,
    maxBytes: opts.spillMaxBytes,
    segmentBytes: SEGMENT_BYTES,
    fsync: opts.journal === 'fsync',
    // Once per change of a segment's state, never per attempt.
    report: event => {
      if (event.kind === 'damaged') log.error(event, 'damaged records skipped in a journal segment (the records around them are read)')
      else if (event.kind === 'unreadable') log.error(event, `journal segment cannot be read: skipped, tried again every ${UNREADABLE_RETRY_MS / 1000} s`)
      else if (event.kind === 'ref_error') log.error(event, 'a journal ref given back twice or not the journal\'s: ignored (a bug)')
      else if (event.kind === 'lock_taken_over') log.warn(event, `journal folder lock left by a process that is gone taken over (${event.reason})`)
      else if (event.kind === 'lock_lost') log.error(event, 'the journal folder lock was removed or replaced while held: another process may be using NOTIFY_DATA_DIR, give each its own')
      else log.info(event, 'journal segment readable again')
    },
  })
  const deadLetterPath = join(opts.dataDir, 'dead-letter.jsonl')
  const deadLetters = createJsonLinesFile(deadLetterPath, err => log.error({ err }, 'writing the dead-letter file failed'), { noFollow: true })
  const deadLetterCap = opts.deadLetterMaxBytes ?? 64 * 1024 * 1024
  let deadLetterBytes = 0
  try {
    const stat = lstatSync(deadLetterPath)
    if (stat.isFile()) deadLetterBytes = stat.size
  } catch {}
  let deadLetterFull = false
  const { sender } = opts
  const aborter = new AbortController()
  // Every call in flight listens for the one shutdown signal.
  setMaxListeners(0, aborter.signal)
  const queue = createQueue<Entry>({
    concurrency: opts.concurrency,
    replayShare: Math.max(1, Math.floor(opts.concurrency / 4)),
    lingerMs: opts.lingerMs,
    send,
  })
  /** Entries in memory (new, journaled, queued, in flight, held): what `stats()` and readiness look at. */
  const inMemory = new Set<Entry>()
  let heldCount = 0

  /** The one way an entry's state changes; a change the table does not list is a bug, thrown. */
  function transition (entry: Entry, to: NotificationState): void {
    if (!TRANSITIONS[entry.state].includes(to)) throw new IllegalTransitionError(`notification ${entry.state} -> ${to}: not in the publisher's transition table`)
    if (entry.state === 'held') heldCount--
    if (to === 'held') heldCount++
    entry.state = to
    if (to === 'on_disk' || to === 'confirmed' || to === 'dead_lettered' || to === 'lost') inMemory.delete(entry)
    else inMemory.add(entry)
  }
  let consecutiveFailures = 0
  let closing = false
  const isClosing = () => closing
  let replaying: Promise<void> | undefined
  let degraded: string | undefined
  const counters = { published: 0, retried: 0, spilled: 0, dead_lettered: 0, dead_letter_refused: 0, replayed: 0, lost: 0, sns_calls: 0, failed_calls: 0 }

  const tick = setInterval(() => {
    retryHeld()
    if (queue.size.live + queue.size.replay + queue.size.inFlight === 0) journal.compactIdle()
    // Replay runs on time, not on traffic: once the backoff after failures has passed, what is on disk
    // goes back into the queue, and those calls probe SNS. So everything on disk is published within
    // NOTIFY_RETRY_MAX_MS plus a tick of SNS recovering, with no new request.
    if (!closing && !queue.paused && journal.hasReplayable()) replay()
  }, opts.tickMs ?? 1000).unref()

  const entryOf = (notification: Notification, now: number): Entry =>
    ({ notification, bytes: payloadBytes(notification), enqueuedAt: now, replayed: false, attempts: 0, notBefore: 0, state: 'new' })

  /** Logs once per change between "everything published or on disk" and "some held in memory only". */
  function updateState (): void {
    const reason = heldCount === 0 ? undefined : `${heldCount} notification(s) can be neither published nor written to disk (${journal.lastFailure?.message ?? 'unknown'})`
    if ((reason === undefined) === (degraded === undefined)) return
    if (reason !== undefined) log.error({ held: heldCount, code: journal.lastFailure?.code }, 'notifications held in memory: refusing predictions until SNS or the disk takes them')
    // Shutting down, no prediction is taken again; and held notifications counted lost (logged as such)
    // were not published nor written: saying "all on disk" after that line would contradict it.
    else if (!closing) log.info('every notification is published or on disk again: taking predictions')
    else if (counters.lost === 0) log.info('every notification is published or on disk')
    degraded = reason
  }

  /** Writes held notifications that are waiting in the queue to disk, now that it may take them. */
  function retryHeld (): void {
    if (heldCount === 0) return
    const waiting = [...queue.entries()].filter(e => e.state === 'held')
    if (waiting.length > 0) {
      const refs = journal.append(waiting.map(e => e.notification))
      if (refs !== undefined) waiting.forEach((e, k) => { e.ref = refs[k]; transition(e, 'queued') })
    }
    updateState()
  }

  /** Entries leaving memory unpublished: left on disk (journaled ones), written to it, or held. */
  function offload (entries: Entry[], reason: string): void {
    // A journal record this entry holds is its copy on disk; the others (held, NOTIFY_JOURNAL=off) are written now.
    const onDisk = entries.filter(e => e.ref !== undefined)
    const toWrite = entries.filter(e => e.ref === undefined)
    const refs = toWrite.length > 0 ? journal.append(toWrite.map(e => e.notification)) : []
    if (refs !== undefined) {
      toWrite.forEach((e, k) => { e.ref = refs[k] })
      onDisk.push(...toWrite)
    }
    for (const e of onDisk) {
      transition(e, 'on_disk')
      journal.release([e.ref!], e.enqueuedAt)
    }
    counters.spilled += onDisk.length
    if (refs === undefined) {
      if (aborter.signal.aborted) {
        counters.lost += toWrite.length
        for (const e of toWrite) transition(e, 'lost')
        log.error({ count: toWrite.length, reason, err: journal.lastFailure }, 'shutting down with notifications neither published nor written to disk: lost')
      } else {
        // Kept in memory and tried again, against SNS and against the disk.
        for (const e of toWrite) {
          if (e.state !== 'held') transition(e, 'held')
          e.notBefore = Date.now() + backoff(e.attempts, opts.retryBaseMs, opts.retryMaxMs)
          queue.requeue(e)
        }
      }
    }
    updateState()
  }

  /** SNS is done with these: acknowledged in the journal, never read back. */
  function settle (entries: Entry[], to: 'confirmed' | 'dead_lettered'): void {
    const refs: JournalRef[] = []
    for (const e of entries) {
      transition(e, to)
      if (e.ref !== undefined) refs.push(e.ref)
    }
    journal.ack(refs)
  }

  /** Never published (SNS refused it for good, or it is over the limits): kept in the dead-letter file while it is under its cap. */
  function deadLetter (entry: Entry, reason: string): void {
    const line = JSON.stringify({ notification: entry.notification, reason, at: new Date().toISOString() })
    const bytes = Buffer.byteLength(line) + 1
    if (deadLetterBytes + bytes > deadLetterCap) {
      counters.dead_letter_refused++
      if (!deadLetterFull) log.error({ file: deadLetterPath, cap: deadLetterCap }, 'the dead-letter file is at NOTIFY_DEAD_LETTER_MAX_BYTES: notifications refused for good are counted (dead_letter_refused) and logged, not kept')
      deadLetterFull = true
      log.warn({ reason, request_id: entry.notification.attributes.request_id }, 'notification refused for good, not kept: the dead-letter file is full')
    } else {
      deadLetters.appendJson(line)
      deadLetterBytes += bytes
      counters.dead_lettered++
      log.error({ reason, request_id: entry.notification.attributes.request_id }, 'SNS refused a notification for good: kept in the dead-letter file')
    }
    settle([entry], 'dead_lettered')
  }

  /** A notification SNS did not take this time: try again later, or leave it on disk. */
  function retry (entry: Entry, reason: string): void {
    entry.attempts++
    if (aborter.signal.aborted) return offload([entry], 'shutting down')
    if (entry.attempts >= opts.maxAttempts && entry.state !== 'held') return offload([entry], `gave up after ${entry.attempts} attempts: ${reason}`)
    counters.retried++
    entry.notBefore = Date.now() + backoff(entry.attempts, opts.retryBaseMs, opts.retryMaxMs)
    if (entry.state === 'in_flight') transition(entry, 'queued')
    queue.requeue(entry)
  }

  async function send (batch: Entry[]): Promise<void> {
    counters.sns_calls++
    // A held entry is sent as it is: it stays held (in memory only) until the disk or SNS takes it.
    for (const e of batch) if (e.state === 'queued') transition(e, 'in_flight')
    const result = await sender.send(batch.map(e => e.notification), aborter.signal)
    if (!Array.isArray(result)) {
      counters.failed_calls++
      if (result.splittable) {
        // Not the messages' fault: send them one by one, without counting an attempt.
        for (const entry of batch.reverse()) {
          if (entry.state === 'in_flight') transition(entry, 'queued')
          queue.requeue(Object.assign(entry, { single: true }))
        }
        return
      }
      // SNS or the network is in trouble (or the topic or credentials are wrong): back off as a whole.
      consecutiveFailures++
      queue.pause(Date.now() + backoff(consecutiveFailures, opts.retryBaseMs, opts.retryMaxMs))
      if (consecutiveFailures === 1 || consecutiveFailures % 10 === 0) {
        log.warn({ code: result.code, reason: result.message, failures: consecutiveFailures, queued: queue.size.live + queue.size.replay }, 'SNS publish failed: retrying with backoff')
      }
      for (const entry of batch.reverse()) retry(entry, result.code)
      return
    }
    if (result.every(outcome => outcome.status === 'failed')) {
      // Nothing taken (throttled, or answers that confirm nothing): back off as for a failed call.
      consecutiveFailures++
      queue.pause(Date.now() + backoff(consecutiveFailures, opts.retryBaseMs, opts.retryMaxMs))
      const reason = result[0]?.status === 'failed' ? result[0].reason : 'failed'
      for (const entry of batch.reverse()) retry(entry, reason)
      return
    }
    const done: Entry[] = []
    result.forEach((outcome, i) => {
      if (outcome.status === 'published') done.push(batch[i])
      else if (outcome.status === 'refused') deadLetter(batch[i], outcome.reason)
      else retry(batch[i], outcome.reason)
    })
    counters.published += done.length
    settle(done, 'confirmed')
    if (consecutiveFailures > 0) log.info({ after_failures: consecutiveFailures }, 'SNS publishing recovered')
    consecutiveFailures = 0
    updateState()
    if (!closing && journal.hasReplayable()) replay()
  }

  /** Reads notifications back from disk into the replay lane, a few batches ahead of the calls. */
  function replay (): Promise<void> {
    replaying ??= (async () => {
      const ahead = MAX_BATCH_ENTRIES * Math.max(1, Math.floor(opts.concurrency / 4)) * 4
      for await (const { notification, ref, enqueuedAt } of journal.replay()) {
        if (closing) {
          journal.release([ref], enqueuedAt)
          break
        }
        counters.replayed++
        const entry: Entry = { ...entryOf(notification, enqueuedAt), replayed: true, ref, state: 'on_disk' }
        transition(entry, 'queued')
        queue.push(entry)
        while (queue.size.replay >= ahead && !isClosing()) await sleep(5, undefined, { ref: false })
      }
    })()
      .catch(err => log.error({ err }, 'replaying journaled notifications failed'))
      .finally(() => { replaying = undefined })
    return replaying
  }

  function oldestUnpublished (): number | undefined {
    let oldest = journal.stats().oldest_off_memory
    for (const e of inMemory) oldest = Math.min(oldest ?? Infinity, e.enqueuedAt)
    return oldest
  }

  return {
    /**
     * Takes a request's notifications: journaled at once (one synchronous write, before the caller
     * answers), queued for SNS. Never throws and never waits.
     */
    publish (all: readonly Notification[]): void {
      if (all.length === 0) return
      const now = Date.now()
      // A message past SNS's 256 KiB (or whose SQS envelope would pass 256 KiB) is never published: a
      // dead letter at once, never in the journal. Input checks (message.ts oversizedRow) keep rows from it.
      const notifications = all.filter(fitsOnTheWire)
      if (notifications.length < all.length) {
        for (const n of all) {
          if (!fitsOnTheWire(n)) deadLetter(entryOf(n, now), `${payloadBytes(n)} bytes (${envelopeBytes(n)} in an SQS envelope), over the ${MAX_PAYLOAD_BYTES}-byte limit`)
        }
      }
      const entries = notifications.map(n => entryOf(n, now))
      if (journaling) {
        const refs = journal.append(notifications)
        if (refs !== undefined) entries.forEach((e, k) => { e.ref = refs[k]; transition(e, 'journaled') })
        else for (const e of entries) transition(e, 'held')
      }
      const room = opts.queueSize - (queue.size.live + queue.size.replay + queue.size.inFlight)
      const overflow: Entry[] = []
      entries.forEach((e, k) => {
        if (closing || (k >= room && e.state !== 'held')) overflow.push(e)
        else {
          if (e.state !== 'held') transition(e, 'queued')
          queue.push(e)
        }
      })
      if (overflow.length > 0) offload(overflow, closing ? 'shutting down' : 'queue full')
      updateState()
    },
    /** Replays what an earlier run left on disk, the spill files of earlier versions included. */
    async start (): Promise<void> {
      try {
        await importLegacy(opts.dataDir, journal, log)
      } catch (err) {
        log.error({ err }, 'importing files of an earlier version failed: they are left in place')
      }
      return replay()
    },
    /** False while some notification is held in memory only: new work could not be announced. */
    readiness (): { ready: true } | { ready: false, reason: string } {
      return degraded === undefined ? { ready: true } : { ready: false, reason: degraded }
    },
    stats () {
      const disk = journal.stats()
      const oldest = oldestUnpublished()
      let heldBytes = 0
      for (const e of inMemory) if (e.state === 'held') heldBytes += e.bytes
      return {
        ...counters,
        queued: queue.size.live + queue.size.replay,
        in_flight: queue.size.inFlight,
        held: heldCount,
        backlog_bytes: disk.bytes + heldBytes,
        oldest_unpublished_seconds: oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000),
        spill_write_failures: disk.write_failures,
        damaged_records: disk.damaged_records,
        dead_letter_bytes: deadLetterBytes,
        unreadable_segments: disk.unreadable_now,
      }
    },
    /** Drains within the deadline; what is left stays on disk (journaled) or is written to it. */
    async close (): Promise<void> {
      closing = true
      clearInterval(tick)
      queue.flush()
      await Promise.race([queue.drained(), sleep(opts.drainTimeoutMs, undefined, { ref: false })])
      // Past the deadline: stop the calls still out; their entries come back through retry() and go to disk.
      aborter.abort()
      while (queue.size.inFlight > 0) await sleep(5)
      queue.close()
      const left = queue.takeAll()
      if (left.length > 0) offload(left, 'shutting down')
      await replaying
      journal.close()
      await deadLetters.close()
      if (counters.spilled > 0) log.warn({ dir: opts.dataDir, ...counters }, 'notifications not yet published are on disk, for the next start')
      await sender.close()
    },
  }
}

export type SnsPublisher = ReturnType<typeof createSnsPublisher>
