import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { readLines } from './jsonl-file.js'
import type { Notification } from './message.js'

/**
 * The notifications on disk: a write-ahead journal (NOTIFY_JOURNAL=on: every notification is appended
 * before its response is sent) or a spill (NOTIFY_JOURNAL=off: only what cannot stay in memory), in one
 * format. Records go to numbered segments, `journal-<n>.jsonl`, one JSON line each:
 * `{"i":<id>,"a":<attributes>,"m":<message JSON>}`; ids that SNS accepted go to `journal-<n>.acks`.
 * A segment whose records are all acknowledged is deleted (compaction); the others are read back,
 * streamed, skipping acknowledged ids, so a replay stopped half-way does not publish its first half
 * again. Writes are synchronous and checked: a record counts only once all its bytes are written.
 */

/** Where one journaled notification is: its segment and id. */
export interface JournalRef {
  readonly segment: Segment
  readonly id: number
  readonly bytes: number
}

interface Segment {
  readonly seq: number
  readonly path: string
  readonly ackPath: string
  fd: number | undefined
  ackFd: number | undefined
  bytes: number
  /** Next id to give (this run's segments), or one past the highest id read. */
  nextId: number
  /** Records on disk not acknowledged; for an earlier run's segment, known once it has been read. */
  unacked: number
  known: boolean
  acked: Bits
  acksLoaded: boolean
  /** Records of this segment held in memory (queued or in flight): it is not replayed while any is. */
  resident: number
  replaying: boolean
  /** When the oldest record that left memory unpublished was made. */
  offMemorySince: number | undefined
  /** A failed write may have left a partial line: the next record starts on a new one. */
  needsNewline: boolean
}

/** A growable bit set of acknowledged ids. */
class Bits {
  private bits = new Uint8Array(64)
  has (id: number): boolean { return id >> 3 < this.bits.length && (this.bits[id >> 3] & (1 << (id & 7))) !== 0 }
  /** Sets the bit; false when it was set already. */
  add (id: number): boolean {
    if (id >> 3 >= this.bits.length) {
      const grown = new Uint8Array(Math.max(this.bits.length * 2, (id >> 3) + 1))
      grown.set(this.bits)
      this.bits = grown
    }
    if (this.has(id)) return false
    this.bits[id >> 3] |= 1 << (id & 7)
    return true
  }
}

export class JournalWriteError extends Error {
  constructor (readonly code: string, message: string) {
    super(message)
  }
}

export interface JournalOptions {
  dir: string
  /** Cap on the bytes of all segments: a write that would pass it fails. */
  maxBytes: number
  /** A segment is closed and a new one started past this size. */
  segmentBytes: number
  /** fdatasync after every write: survives a machine crash, at the cost of a disk flush per request. */
  fsync: boolean
}

const SEGMENT = /^journal-(\d+)\.jsonl$/

export function createJournal (opts: JournalOptions) {
  const segments = new Map<number, Segment>()
  let active: Segment | undefined
  let nextSeq = 1
  let totalBytes = 0
  const counters = { write_failures: 0, ack_write_failures: 0 }
  let lastFailure: JournalWriteError | undefined

  // An earlier run's segments: replayed, not appended to.
  try {
    for (const name of readdirSync(opts.dir)) {
      const seq = Number(SEGMENT.exec(name)?.[1] ?? NaN)
      if (!Number.isInteger(seq)) continue
      const segment = makeSegment(seq)
      const stat = statSync(segment.path)
      if (!stat.isFile()) continue // not ours to read (a device, a folder)
      segment.bytes = stat.size
      segment.known = false
      segment.acksLoaded = false
      segment.offMemorySince = stat.mtimeMs
      segments.set(seq, segment)
      totalBytes += stat.size
      nextSeq = Math.max(nextSeq, seq + 1)
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }

  function makeSegment (seq: number): Segment {
    const base = join(opts.dir, `journal-${String(seq).padStart(8, '0')}`)
    return {
      seq,
      path: `${base}.jsonl`,
      ackPath: `${base}.acks`,
      fd: undefined,
      ackFd: undefined,
      bytes: 0,
      nextId: 0,
      unacked: 0,
      known: true,
      acked: new Bits(),
      acksLoaded: true,
      resident: 0,
      replaying: false,
      offMemorySince: undefined,
      needsNewline: false,
    }
  }

  function closeFds (segment: Segment): void {
    for (const fd of [segment.fd, segment.ackFd]) {
      if (fd !== undefined) try { closeSync(fd) } catch {}
    }
    segment.fd = undefined
    segment.ackFd = undefined
  }

  function remove (segment: Segment): void {
    closeFds(segment)
    for (const path of [segment.path, segment.ackPath]) {
      try { unlinkSync(path) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err }
    }
    segments.delete(segment.seq)
    totalBytes -= segment.bytes
    if (active === segment) active = undefined
  }

  /** Deletes a segment once everything in it is acknowledged (the active one only when `idle`). */
  function compact (segment: Segment, idle = false): void {
    if (!segments.has(segment.seq) || segment.replaying || !segment.known || segment.unacked > 0 || segment.resident > 0) return
    if (segment === active && !idle) return
    try {
      remove(segment)
    } catch {
      // Left for a later pass; its records are all acknowledged, so it is never published again.
    }
  }

  function writeAll (fd: number, buffer: Buffer, what: string): void {
    let written: number
    try {
      written = writeSync(fd, buffer)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      throw new JournalWriteError(e.code ?? 'EIO', `${what}: ${e.message}`)
    }
    if (written !== buffer.length) throw new JournalWriteError('SHORT_WRITE', `${what}: wrote ${written} of ${buffer.length} bytes`)
  }

  function fail (err: JournalWriteError): undefined {
    counters.write_failures++
    lastFailure = err
    return undefined
  }

  return {
    /**
     * Appends notifications, all in one write; their refs, or undefined when nothing could be written
     * (the disk is full or read-only, the folder is missing, the cap is reached). `lastFailure` says why.
     */
    append (notifications: readonly Notification[]): JournalRef[] | undefined {
      if (notifications.length === 0) return []
      if (active === undefined) {
        active = makeSegment(nextSeq++)
        segments.set(active.seq, active)
      }
      const segment = active
      let text = segment.needsNewline ? '\n' : ''
      const sizes: number[] = []
      for (let k = 0; k < notifications.length; k++) {
        const n = notifications[k]
        const line = `{"i":${segment.nextId + k},"a":${JSON.stringify(n.attributes)},"m":${n.message}}\n`
        sizes.push(line.length)
        text += line
      }
      const buffer = Buffer.from(text)
      if (totalBytes + buffer.length > opts.maxBytes) {
        return fail(new JournalWriteError('OVER_CAP', `the journal would pass NOTIFY_SPILL_MAX_BYTES (${opts.maxBytes} bytes)`))
      }
      let before = 0
      try {
        if (segment.fd === undefined) {
          mkdirSync(opts.dir, { recursive: true })
          segment.fd = openSync(segment.path, 'a')
          const stat = fstatSync(segment.fd)
          totalBytes += (stat.isFile() ? stat.size : 0) - segment.bytes
          segment.bytes = stat.isFile() ? stat.size : 0
        }
        before = segment.bytes
        writeAll(segment.fd, buffer, segment.path)
        if (opts.fsync) fdatasyncSync(segment.fd)
      } catch (err) {
        const failure = err instanceof JournalWriteError ? err : new JournalWriteError((err as NodeJS.ErrnoException).code ?? 'EIO', (err as Error).message)
        if (segment.fd !== undefined) {
          // Take back a partial record; where that fails too, the next one starts on a line of its own.
          try { ftruncateSync(segment.fd, before) } catch { segment.needsNewline = true }
        }
        closeFds(segment) // the next write opens the path again: a disk made writable is seen at once
        return fail(failure)
      }
      segment.needsNewline = false
      segment.bytes += buffer.length
      totalBytes += buffer.length
      const refs = notifications.map((_, k) => ({ segment, id: segment.nextId + k, bytes: sizes[k] }))
      segment.nextId += notifications.length
      segment.unacked += notifications.length
      segment.resident += notifications.length
      if (segment.bytes >= opts.segmentBytes) {
        closeFds(segment)
        active = undefined
      }
      return refs
    },

    /** SNS took these (or refused them for good, kept in the dead letters): they are never read back. */
    ack (refs: readonly JournalRef[]): void {
      const bySegment = new Map<Segment, number[]>()
      for (const ref of refs) {
        const segment = ref.segment
        segment.resident--
        if (!segment.acked.add(ref.id)) continue
        segment.unacked--
        let ids = bySegment.get(segment)
        if (ids === undefined) bySegment.set(segment, ids = [])
        ids.push(ref.id)
      }
      for (const [segment, ids] of bySegment) {
        if (!segments.has(segment.seq)) continue
        try {
          segment.ackFd ??= openSync(segment.ackPath, 'a')
          writeAll(segment.ackFd, Buffer.from(ids.join('\n') + '\n'), segment.ackPath)
        } catch {
          // The records stay unacknowledged on disk: published again after a restart, never lost.
          counters.ack_write_failures++
          if (segment.ackFd !== undefined) try { closeSync(segment.ackFd) } catch {}
          segment.ackFd = undefined
        }
        compact(segment)
      }
      for (const ref of refs) if (ref.segment.unacked === 0) compact(ref.segment)
    },

    /** These left memory unpublished; they stay on disk for a replay. */
    release (refs: readonly JournalRef[], enqueuedAt: number): void {
      for (const ref of refs) {
        ref.segment.resident--
        ref.segment.offMemorySince = Math.min(ref.segment.offMemorySince ?? enqueuedAt, enqueuedAt)
      }
    },

    /** Whether a segment has records to read back: unacknowledged, none in memory, not being read. */
    hasReplayable (): boolean {
      for (const s of segments.values()) if (replayable(s)) return true
      return false
    },

    /**
     * Reads back, oldest segment first, the records no one holds: each is yielded as resident (held in
     * memory) until acknowledged or released. A segment is not listed again while any of its records
     * is in memory or it is being read, so nothing is queued twice.
     */
    async * replay (): AsyncGenerator<{ notification: Notification, ref: JournalRef, enqueuedAt: number }> {
      for (;;) {
        const segment = [...segments.values()].filter(replayable).sort((a, b) => a.seq - b.seq)[0]
        if (segment === undefined) return
        if (segment === active) {
          closeFds(segment)
          active = undefined
        }
        segment.replaying = true
        const since = segment.offMemorySince ?? Date.now()
        segment.offMemorySince = undefined
        try {
          if (!segment.acksLoaded) {
            for await (const line of readLines(segment.ackPath)) {
              const id = Number(line)
              if (line !== '' && Number.isInteger(id)) segment.acked.add(id)
            }
            segment.acksLoaded = true
          }
          for await (const line of readLines(segment.path)) {
            if (line === '') continue
            let record: { i: number, a: Notification['attributes'], m: unknown }
            try {
              record = JSON.parse(line)
            } catch {
              continue // a line cut by a failed write: its record was never counted
            }
            if (!Number.isInteger(record.i) || segment.acked.has(record.i)) continue
            if (!segment.known) {
              segment.unacked++
              segment.nextId = Math.max(segment.nextId, record.i + 1)
            }
            segment.resident++
            yield { notification: { message: JSON.stringify(record.m), attributes: record.a }, ref: { segment, id: record.i, bytes: line.length + 1 }, enqueuedAt: since }
          }
          segment.known = true
        } finally {
          segment.replaying = false
        }
        compact(segment)
      }
    },

    /** Deletes the active segment when all of it is acknowledged (called when the queue is idle). */
    compactIdle (): void {
      if (active !== undefined) compact(active, true)
    },

    stats () {
      let oldest: number | undefined
      for (const s of segments.values()) {
        if (s.offMemorySince !== undefined && (s.unacked > 0 || !s.known)) oldest = Math.min(oldest ?? Infinity, s.offMemorySince)
      }
      return { bytes: totalBytes, segments: segments.size, oldest_off_memory: oldest, ...counters }
    },

    get lastFailure () { return lastFailure },

    close (): void {
      for (const segment of segments.values()) {
        closeFds(segment)
        compact(segment, true)
      }
      active = undefined
    },
  }

  function replayable (s: Segment): boolean {
    return !s.replaying && s.resident === 0 && (!s.known || s.unacked > 0)
  }
}

export type Journal = ReturnType<typeof createJournal>
