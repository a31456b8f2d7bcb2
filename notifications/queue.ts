import type { Notification } from './message.js'
import { MAX_BATCH_ENTRIES, MAX_PAYLOAD_BYTES } from './message.js'

/** One notification waiting in memory or in flight. */
export interface QueueEntry<Ref = unknown> {
  readonly notification: Notification
  /** Its size as SNS counts it. */
  readonly bytes: number
  readonly enqueuedAt: number
  /** Read back from disk: goes in the replay lane, which has a bounded share of the calls. */
  readonly replayed: boolean
  attempts: number
  notBefore: number
  /** Sent on its own: too large for a batch, or its batch was refused as a batch. */
  single?: boolean
  /** Where it is on disk, if it is. */
  ref?: Ref
}

export interface QueueOptions<E extends QueueEntry> {
  /** SNS calls in flight at once. */
  concurrency: number
  /** Of those, this many are kept for replayed notifications while any wait (and they never get more): live ones always have the rest. */
  replayShare: number
  /** How long a live notification may wait for others to fill its batch. */
  lingerMs: number
  /** Sends one batch; must not throw. */
  send: (batch: E[]) => Promise<void>
}

/**
 * The in-memory queue and its pump: two lanes (live, replayed), batches of up to 10 within 256 KiB,
 * oldest first, at most `concurrency` calls at once, a short linger for fuller batches, and a pause
 * the owner sets when SNS is in trouble. Knows nothing of SNS's answers or of files.
 */
export function createQueue<E extends QueueEntry> (opts: QueueOptions<E>) {
  const live: E[] = []
  const replay: E[] = []
  let inFlight = 0
  let calls = 0
  let replayCalls = 0
  let pausedUntil = 0
  let timer: NodeJS.Timeout | undefined
  let timerAt = 0
  let flushing = false
  let idle: Array<() => void> = []

  /** Up to 10 ready entries within 256 KiB, oldest first. */
  function takeBatch (lane: E[], now: number): E[] {
    const batch: E[] = []
    let bytes = 0
    for (let i = 0; i < lane.length && batch.length < MAX_BATCH_ENTRIES; i++) {
      const entry = lane[i]
      if (entry.notBefore > now) continue
      const alone = entry.single === true || entry.bytes > MAX_PAYLOAD_BYTES
      if (batch.length > 0 && (alone || bytes + entry.bytes > MAX_PAYLOAD_BYTES)) continue
      batch.push(entry)
      bytes += entry.bytes
      lane.splice(i--, 1)
      if (alone) break
    }
    return batch
  }

  /** Whether a lane's entries fill a call: 10 of them, or more than 256 KiB together. */
  function fillsACall (lane: E[]): boolean {
    if (lane.length >= MAX_BATCH_ENTRIES) return true
    let bytes = 0
    for (const entry of lane) if ((bytes += entry.bytes) > MAX_PAYLOAD_BYTES) return true
    return false
  }

  function start (batch: E[], fromReplay: boolean): void {
    inFlight += batch.length
    calls++
    if (fromReplay) replayCalls++
    opts.send(batch).finally(() => {
      inFlight -= batch.length
      calls--
      if (fromReplay) replayCalls--
      pump()
    })
  }

  function pump (): void {
    const now = Date.now()
    if (now < pausedUntil) return schedule(pausedUntil - now)
    let wakeAt = Infinity
    // Live first: a few notifications that have not waited long wait for company, unless they fill a call already.
    const lingering = !flushing && live.length > 0 && now - live[0].enqueuedAt < opts.lingerMs && !fillsACall(live)
    if (lingering) wakeAt = live[0].enqueuedAt + opts.lingerMs
    // While replayed notifications wait, their share of the calls is kept for them.
    const liveLimit = replay.length > 0 ? opts.concurrency - Math.min(opts.replayShare, opts.concurrency - 1) : opts.concurrency
    if (!lingering) {
      while (calls - replayCalls < liveLimit && calls < opts.concurrency && live.length > 0) {
        const batch = takeBatch(live, now)
        if (batch.length === 0) break
        start(batch, false)
      }
    }
    while (replayCalls < opts.replayShare && calls < opts.concurrency && replay.length > 0) {
      const batch = takeBatch(replay, now)
      if (batch.length === 0) break
      start(batch, true)
    }
    // Entries held back by their retry time.
    for (const lane of [live, replay]) for (const e of lane) if (e.notBefore > now) wakeAt = Math.min(wakeAt, e.notBefore)
    if (wakeAt !== Infinity && calls < opts.concurrency) schedule(wakeAt - now)
    if (live.length === 0 && replay.length === 0 && inFlight === 0) {
      const waiting = idle
      idle = []
      for (const resolve of waiting) resolve()
    }
  }

  /** Pumps again in `ms`, unless a pump is due sooner already. */
  function schedule (ms: number): void {
    const at = Date.now() + Math.max(1, ms)
    if (timer !== undefined && timerAt <= at) return
    clearTimeout(timer)
    timerAt = at
    timer = setTimeout(() => { timer = undefined; pump() }, at - Date.now())
  }

  return {
    /** Queues at the back of its lane; the pump runs on the next tick, so the caller is never delayed. */
    push (entry: E): void {
      (entry.replayed ? replay : live).push(entry)
      schedule(0)
    },
    /** Back at the front of its lane, after a failed attempt. */
    requeue (entry: E): void {
      (entry.replayed ? replay : live).unshift(entry)
      schedule(0)
    },
    /** No calls until then (SNS is failing as a whole). */
    pause (until: number): void {
      pausedUntil = Math.max(pausedUntil, until)
    },
    /** Whether calls are paused now. */
    get paused () { return Date.now() < pausedUntil },
    /** Sends without lingering from now on (shutting down). */
    flush (): void {
      flushing = true
      pump()
    },
    /** Resolves when nothing is queued or in flight. */
    drained (): Promise<void> {
      if (live.length === 0 && replay.length === 0 && inFlight === 0) return Promise.resolve()
      return new Promise(resolve => { idle.push(resolve) })
    },
    /** Removes and returns everything queued (not in flight). */
    takeAll (): E[] {
      clearTimeout(timer)
      timer = undefined
      return [...live.splice(0), ...replay.splice(0)]
    },
    /** Everything queued, both lanes (not in flight). */
    * entries (): Iterable<E> {
      yield * live
      yield * replay
    },
    get size () { return { live: live.length, replay: replay.length, inFlight, calls } },
    close (): void {
      clearTimeout(timer)
      timer = undefined
    },
  }
}

export type Queue<E extends QueueEntry> = ReturnType<typeof createQueue<E>>
