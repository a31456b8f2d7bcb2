import { createReadStream, existsSync, readdirSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { PublishBatchCommand, PublishCommand, type SNSClient, type MessageAttributeValue } from '@aws-sdk/client-sns'
import type { FastifyBaseLogger } from 'fastify'
import { createJournal } from './journal.js'
import type { Notification } from './message.js'

// SNS's limits: 10 entries per PublishBatch, 256 KiB per message and per batch (body plus attributes).
export const MAX_BATCH_ENTRIES = 10
export const MAX_PAYLOAD_BYTES = 256 * 1024

// Errors about one message: publishing it again cannot succeed.
const PERMANENT_MESSAGE_ERRORS = new Set(['InvalidParameter', 'InvalidParameterValue', 'ValidationError', 'InvalidMessageContents'])
// Errors about a batch as a whole, that its entries sent one by one avoid.
const SPLITTABLE_BATCH_ERRORS = new Set(['BatchRequestTooLong', 'TooManyEntriesInBatchRequest', 'BatchEntryIdsNotDistinct', 'EmptyBatchRequest', 'InvalidBatchEntryId'])

export interface SnsPublisherOptions {
  client: SNSClient
  topicArn: string
  /** Where spill-over and dead letters are kept. */
  dataDir: string
  /** Notifications held in memory (queued and in flight) before new ones spill to disk. */
  queueSize: number
  /** SNS calls in flight at once. */
  concurrency: number
  /** How long a notification may wait for others to fill its batch (fewer, fuller calls). */
  lingerMs: number
  /** Attempts per notification before it is spilled to disk for a later replay. */
  maxAttempts: number
  retryBaseMs: number
  retryMaxMs: number
  drainTimeoutMs: number
  log: FastifyBaseLogger
}

interface ReplaySource {
  file: string
  pending: number
  reading: boolean
}

interface Entry {
  readonly notification: Notification
  readonly bytes: number
  readonly enqueuedAt: number
  attempts: number
  notBefore: number
  /** Sent on its own: too large for a batch, or its batch was refused as a batch. */
  single?: boolean
  source?: ReplaySource
}

interface SpilledRecord {
  notification: Notification
}

export const payloadBytes = (n: Notification) =>
  Buffer.byteLength(n.message) + Object.entries(n.attributes).reduce((sum, [name, value]) => sum + name.length + 'String'.length + Buffer.byteLength(value), 0)

const attributesOf = (n: Notification): Record<string, MessageAttributeValue> =>
  Object.fromEntries(Object.entries(n.attributes).map(([name, value]) => [name, { DataType: 'String', StringValue: value }]))

/** Full jitter: a random delay up to the exponential bound, so retrying instances do not march in step. */
function backoff (attempt: number, baseMs: number, maxMs: number): number {
  return Math.random() * Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
}

function errorCode (err: unknown): string {
  const e = err as { name?: string, Code?: string, code?: string }
  return e.Code ?? e.name ?? e.code ?? 'Error'
}

/**
 * Publishes notifications to an SNS topic in the background: batched (PublishBatch, 10 per call,
 * 256 KiB), with bounded concurrency, retries with backoff and jitter, and nothing silently lost:
 * what cannot be held in memory or published in time is spilled to an append-only file and replayed
 * when SNS recovers and on the next start; what SNS refuses for good goes to a dead-letter file.
 * Delivery is at least once: SNS standard topics have no deduplication.
 */
export function createSnsPublisher (opts: SnsPublisherOptions) {
  const { client, topicArn, log } = opts
  const spillPath = join(opts.dataDir, 'spill.jsonl')
  const spill = createJournal(spillPath)
  const deadLetters = createJournal(join(opts.dataDir, 'dead-letter.jsonl'))
  const aborter = new AbortController()

  const queue: Entry[] = []
  let inFlight = 0
  let inFlightCalls = 0
  let consecutiveFailures = 0
  let pausedUntil = 0
  let timer: NodeJS.Timeout | undefined
  let timerAt = 0
  let closing = false
  let replaying: Promise<void> | undefined
  let spilledSinceReplay = false
  let idle: (() => void) | undefined

  const counters = { published: 0, retried: 0, spilled: 0, dead_lettered: 0, replayed: 0, sns_calls: 0, failed_calls: 0 }

  function settle (entry: Entry): void {
    const source = entry.source
    if (source === undefined) return
    source.pending--
    if (source.pending === 0 && !source.reading) {
      unlinkSync(source.file)
      log.info({ file: source.file }, 'spilled notifications replayed')
    }
  }

  function toSpill (entry: Entry, reason: string): void {
    spill.append({ notification: entry.notification, reason, at: new Date().toISOString() } satisfies SpilledRecord & { reason: string, at: string })
    counters.spilled++
    spilledSinceReplay = true
    settle(entry)
  }

  function toDeadLetter (entry: Entry, reason: string): void {
    deadLetters.append({ notification: entry.notification, reason, at: new Date().toISOString() })
    counters.dead_lettered++
    log.error({ reason, request_id: entry.notification.attributes.request_id }, 'SNS refused a notification for good: kept in the dead-letter file')
    settle(entry)
  }

  function published (entry: Entry): void {
    counters.published++
    settle(entry)
  }

  /** A notification SNS did not take this time: try again later, or keep it on disk. */
  function retry (entry: Entry, reason: string): void {
    entry.attempts++
    if (closing && aborter.signal.aborted) return toSpill(entry, reason)
    if (entry.attempts >= opts.maxAttempts) return toSpill(entry, `gave up after ${entry.attempts} attempts: ${reason}`)
    counters.retried++
    entry.notBefore = Date.now() + backoff(entry.attempts, opts.retryBaseMs, opts.retryMaxMs)
    queue.unshift(entry)
  }

  function enqueue (entry: Entry): void {
    if (closing && aborter.signal.aborted) return toSpill(entry, 'shutting down')
    if (queue.length + inFlight >= opts.queueSize) return toSpill(entry, 'queue full')
    queue.push(entry)
  }

  /** Up to 10 ready entries within 256 KiB, oldest first. */
  function takeBatch (now: number): Entry[] {
    const batch: Entry[] = []
    let bytes = 0
    for (let i = 0; i < queue.length && batch.length < MAX_BATCH_ENTRIES; i++) {
      const entry = queue[i]
      if (entry.notBefore > now) continue
      const alone = entry.single === true || entry.bytes > MAX_PAYLOAD_BYTES
      if (batch.length > 0 && (alone || bytes + entry.bytes > MAX_PAYLOAD_BYTES)) continue
      batch.push(entry)
      bytes += entry.bytes
      queue.splice(i--, 1)
      if (alone) break
    }
    return batch
  }

  function pump (): void {
    const now = Date.now()
    if (now < pausedUntil) return schedule(pausedUntil - now)
    // Too few for a full batch, and none has waited long: wait for company.
    if (!closing && queue.length < MAX_BATCH_ENTRIES && queue.length > 0 && now - queue[0].enqueuedAt < opts.lingerMs) {
      return schedule(queue[0].enqueuedAt + opts.lingerMs - now)
    }
    while (inFlightCalls < opts.concurrency && queue.length > 0) {
      const batch = takeBatch(now)
      if (batch.length === 0) {
        const next = Math.min(...queue.map(e => e.notBefore))
        return schedule(next - now)
      }
      inFlight += batch.length
      inFlightCalls++
      send(batch).catch(err => log.error({ err }, 'notification publisher failed')).finally(() => {
        inFlight -= batch.length
        inFlightCalls--
        pump()
      })
    }
    if (queue.length === 0 && inFlight === 0) idle?.()
  }

  /** Pumps again in `ms`, unless a pump is due sooner already. */
  function schedule (ms: number): void {
    const at = Date.now() + Math.max(1, ms)
    if (timer !== undefined && timerAt <= at) return
    clearTimeout(timer)
    timerAt = at
    timer = setTimeout(() => { timer = undefined; pump() }, at - Date.now())
  }

  async function send (batch: Entry[]): Promise<void> {
    counters.sns_calls++
    try {
      if (batch.length === 1) {
        const [entry] = batch
        await client.send(new PublishCommand({ TopicArn: topicArn, Message: entry.notification.message, MessageAttributes: attributesOf(entry.notification) }), { abortSignal: aborter.signal })
        published(entry)
      } else {
        const answer = await client.send(new PublishBatchCommand({
          TopicArn: topicArn,
          PublishBatchRequestEntries: batch.map((entry, i) => ({ Id: String(i), Message: entry.notification.message, MessageAttributes: attributesOf(entry.notification) })),
        }), { abortSignal: aborter.signal })
        const failed = new Map((answer.Failed ?? []).map(f => [f.Id, f]))
        batch.forEach((entry, i) => {
          const failure = failed.get(String(i))
          if (failure === undefined) return published(entry)
          const reason = `${failure.Code ?? 'Error'}: ${failure.Message ?? ''}`
          if (failure.SenderFault === true && PERMANENT_MESSAGE_ERRORS.has(failure.Code ?? '')) toDeadLetter(entry, reason)
          else retry(entry, reason)
        })
      }
      if (consecutiveFailures > 0) log.info({ after_failures: consecutiveFailures }, 'SNS publishing recovered')
      consecutiveFailures = 0
      if (spilledSinceReplay && !closing) replay()
    } catch (err) {
      counters.failed_calls++
      const code = errorCode(err)
      if (batch.length > 1 && SPLITTABLE_BATCH_ERRORS.has(code)) {
        // Not the messages' fault: send them one by one, without counting an attempt.
        for (const entry of batch.reverse()) queue.unshift(Object.assign(entry, { single: true }))
        return
      }
      if (batch.length === 1 && PERMANENT_MESSAGE_ERRORS.has(code)) return toDeadLetter(batch[0], `${code}: ${(err as Error).message}`)
      // SNS or the network is in trouble (or the topic or credentials are wrong): back off as a whole.
      consecutiveFailures++
      pausedUntil = Date.now() + backoff(consecutiveFailures, opts.retryBaseMs, opts.retryMaxMs)
      if (consecutiveFailures === 1 || consecutiveFailures % 10 === 0) {
        log.warn({ code, failures: consecutiveFailures, queued: queue.length }, 'SNS publish failed: retrying with backoff')
      }
      for (const entry of batch.reverse()) retry(entry, code)
    }
  }

  const roomToReplay = () => closing || queue.length + inFlight < opts.queueSize / 2
  const callsSettled = () => inFlight === 0

  /** Spilled notifications back into the queue, as room allows; each file is removed once all of it is settled. */
  async function replayFiles (): Promise<void> {
    if (existsSync(spillPath) && statSync(spillPath).size > 0) {
      // New spill-over goes to a fresh file while this one is read back.
      await spill.rotate(join(opts.dataDir, `spill-${Date.now()}-${process.pid}.replay.jsonl`))
    }
    spilledSinceReplay = false
    const files = existsSync(opts.dataDir) ? readdirSync(opts.dataDir).filter(f => f.endsWith('.replay.jsonl')).sort() : []
    for (const name of files) {
      const source: ReplaySource = { file: join(opts.dataDir, name), pending: 0, reading: true }
      const lines = createInterface({ input: createReadStream(source.file), crlfDelay: Infinity })
      for await (const line of lines) {
        if (closing) return lines.close() // the file stays, and is replayed on the next start
        if (line.trim() === '') continue
        // Leave room for live traffic: replay only into the lower half of the queue.
        while (!roomToReplay()) await sleep(50)
        let record: SpilledRecord
        try {
          record = JSON.parse(line)
        } catch {
          log.error({ file: source.file }, 'unreadable line in a spill file, skipped')
          continue
        }
        source.pending++
        counters.replayed++
        enqueue({ notification: record.notification, bytes: payloadBytes(record.notification), enqueuedAt: Date.now(), attempts: 0, notBefore: 0, source })
        pump()
      }
      source.reading = false
      if (source.pending === 0) unlinkSync(source.file)
    }
  }

  function replay (): Promise<void> {
    replaying ??= replayFiles()
      .catch(err => log.error({ err }, 'replaying spilled notifications failed'))
      .finally(() => { replaying = undefined })
    return replaying
  }

  return {
    /** Queues notifications; returns at once. */
    publish (notifications: readonly Notification[]): void {
      const now = Date.now()
      for (const notification of notifications) enqueue({ notification, bytes: payloadBytes(notification), enqueuedAt: now, attempts: 0, notBefore: 0 })
      pump()
    },
    /** Replays what an earlier run spilled. */
    start (): Promise<void> {
      return replay()
    },
    stats () {
      return { ...counters, queued: queue.length, in_flight: inFlight }
    },
    /** Drains within the deadline; what is left, queued or in flight, is spilled to disk. */
    async close (): Promise<void> {
      closing = true
      const drained = new Promise<void>(resolve => { idle = resolve })
      pump()
      if (queue.length > 0 || inFlight > 0) {
        await Promise.race([drained, sleep(opts.drainTimeoutMs, undefined, { ref: false })])
      }
      // Past the deadline: stop the calls still out; their entries come back through retry() and spill.
      aborter.abort()
      while (!callsSettled()) await sleep(5)
      clearTimeout(timer)
      for (const entry of queue.splice(0)) toSpill(entry, 'shutting down')
      await replaying
      await Promise.all([spill.close(), deadLetters.close()])
      if (counters.spilled > 0) log.warn({ file: spillPath, ...counters }, 'notifications not yet published were spilled to disk')
      client.destroy()
    },
  }
}

export type SnsPublisher = ReturnType<typeof createSnsPublisher>
