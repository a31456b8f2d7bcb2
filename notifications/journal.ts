import { accessSync, closeSync, constants, fdatasyncSync, statSync, fstatSync, ftruncateSync, lstatSync, readdirSync, unlinkSync, writeSync, type Dirent } from 'node:fs'
import { join } from 'node:path'
import type { Notification } from './message.js'
import { encodeRecord, MAX_ID, openAppendNoFollow, readBoundedLines, readRecords } from './records.js'
import { ConfigError } from '../errors.js'
import { makeFolder } from './files.js'
import { lockFolder, JournalLockedError, type JournalLock } from './journal-lock.js'

/**
 * The notifications on disk: a write-ahead journal (NOTIFY_JOURNAL=on: every notification is appended
 * before its response is sent) or a spill (NOTIFY_JOURNAL=off: only what cannot stay in memory), in one
 * format. Records go to numbered segments, `journal-<n>.rec`, framed as records.ts describes (magic,
 * length, id, CRC-32, body), so no message can break them; ids that SNS accepted go to
 * `journal-<n>.acks`, one decimal id per line. A segment whose records are all acknowledged is deleted
 * (compaction); the others are read back, streamed, skipping acknowledged ids, so a replay stopped
 * half-way does not publish its first half again. Writes are synchronous and checked: a record counts
 * only once all its bytes are written. Only regular files with these names are touched, never through
 * a symlink. Segments of the earlier line-based format (`journal-<n>.jsonl`) are listed in `legacy`
 * for legacy.ts to import. The folder has one owner: `journal.lock` (journal-lock.ts) is taken before
 * any of its files is read, and released by `close`.
 */

/**
 * Where one journaled notification is: its segment and id. Every ref the journal hands out (from
 * `append` or `replay`) is given back exactly once, to `ack` (SNS is done with it) or to `release` (it
 * left memory unpublished): the segment's `resident` count, which keeps a segment from being read back
 * or deleted while its records are in memory, depends on it. The journal checks it: a ref given back a
 * second time, or one it never handed out, changes nothing and is counted (`ref_errors`) and reported.
 */
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
  /** Why it could not be read last time, and when: it is skipped, and tried again later. */
  unreadable: { reason: string, at: number } | undefined
  /** Damaged records in it were counted and reported (once: a segment may be read several times). */
  damageReported: boolean
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

/** The largest record body read or written: a message within SNS's 256 KiB and its attributes fit twice. */
export const MAX_RECORD_BODY_BYTES = 512 * 1024
/** How long a segment that could not be read is left before it is tried again. */
export const UNREADABLE_RETRY_MS = 60_000

export interface JournalOptions {
  dir: string
  /** Cap on the bytes of all segments: a write that would pass it fails. */
  maxBytes: number
  /** A segment is closed and a new one started past this size. */
  segmentBytes: number
  /** fdatasync after every write: survives a machine crash, at the cost of a disk flush per request. */
  fsync: boolean
  /** How often the folder's lock is refreshed (journal-lock.ts; 5 s): stale after 3 of these. For tests. */
  lockHeartbeatMs?: number
  /** Hears of damaged records, of segments that cannot be read and of those readable again: once per change. */
  report?: (event: { kind: 'damaged', path: string, regions: number, bytes: number } | { kind: 'unreadable', path: string, reason: string } | { kind: 'readable', path: string } |
  /** A ref acked or released twice, or not this journal's: a bug in the caller, ignored. */
  { kind: 'ref_error', how: 'ack' | 'release', path: string, id: number } |
  /** The folder's lock, left by an owner that is gone, was taken over (at start). */
  { kind: 'lock_taken_over', path: string, reason: string, owner: { pid: number, hostname: string, started: string } | undefined } |
  /** The lock file was removed or replaced while this journal held it: another process may use the folder. */
  { kind: 'lock_lost', path: string }) => void
}

const SEGMENT = /^journal-(\d{1,15})\.rec$/
const LEGACY_SEGMENT = /^journal-(\d{1,15})\.jsonl$/
/** An acknowledged id as written: decimal, no sign, no exponent, within MAX_ID. */
const ACK_ID = /^(0|[1-9]\d{0,9})$/

/** Thrown at start when the folder cannot hold the journal: names the path and the fix. */
export class JournalFolderError extends ConfigError {
  constructor (dir: string, reason: string) {
    super(`NOTIFY_DATA_DIR ${dir} cannot hold the notification journal: ${reason}. Point NOTIFY_DATA_DIR at a folder ` +
      'the service\'s user can create, read and write (in a container, a writable volume), or fix its ownership and permissions')
  }
}

/**
 * The folder's entries, creating it if need be, once its lock is taken (journal-lock.ts); a
 * JournalFolderError when it cannot be used, a JournalLockedError when another process owns it.
 */
function openFolder (opts: JournalOptions): { entries: Dirent[], lock: JournalLock } {
  const { dir } = opts
  let lock: JournalLock | undefined
  try {
    makeFolder(dir)
    if (!statSync(dir).isDirectory()) throw new JournalFolderError(dir, 'it is not a folder')
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK)
    lock = lockFolder(dir, { heartbeatMs: opts.lockHeartbeatMs, onLost: path => opts.report?.({ kind: 'lock_lost', path }) })
    if (lock.tookOver !== undefined) opts.report?.({ kind: 'lock_taken_over', ...lock.tookOver })
    return { entries: readdirSync(dir, { withFileTypes: true }), lock }
  } catch (err) {
    lock?.release()
    if (err instanceof JournalFolderError || err instanceof JournalLockedError) throw err
    const e = err as NodeJS.ErrnoException
    throw new JournalFolderError(dir, `${e.code ?? 'error'} (${e.message})`)
  }
}

export function createJournal (opts: JournalOptions) {
  const segments = new Map<number, Segment>()
  let active: Segment | undefined
  let nextSeq = 1
  let totalBytes = 0
  const counters = { write_failures: 0, ack_write_failures: 0, damaged_records: 0, unreadable_segments: 0, ref_errors: 0 }
  /** Refs handed out and not yet given back (acked or released). */
  const outstanding = new WeakSet<JournalRef>()
  /** Whether a ref may be given back now: once, and only one this journal handed out. */
  function giveBack (ref: JournalRef, how: 'ack' | 'release'): boolean {
    if (outstanding.delete(ref)) return true
    counters.ref_errors++
    opts.report?.({ kind: 'ref_error', how, path: ref.segment.path, id: ref.id })
    return false
  }
  let lastFailure: JournalWriteError | undefined
  /** Segments of the earlier line-based format, for legacy.ts: oldest first. */
  const legacy: Array<{ path: string, ackPath: string }> = []

  // An earlier run's segments: replayed, not appended to. Only regular files (a symlink, a folder or a
  // device with a journal's name is left alone).
  // Names other than the journal's (journal.lock, dead-letter.jsonl) are skipped by the patterns below.
  const { entries, lock } = openFolder(opts)
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    // New segments are numbered past every name in use, a symlink's or a folder's too.
    const used = Number(/^journal-(\d{1,15})\./.exec(entry.name)?.[1] ?? NaN)
    if (Number.isSafeInteger(used)) nextSeq = Math.max(nextSeq, used + 1)
    if (!entry.isFile()) continue
    const legacySeq = Number(LEGACY_SEGMENT.exec(entry.name)?.[1] ?? NaN)
    if (Number.isSafeInteger(legacySeq)) {
      legacy.push({ path: join(opts.dir, entry.name), ackPath: join(opts.dir, entry.name.replace(/\.jsonl$/, '.acks')) })
      nextSeq = Math.max(nextSeq, legacySeq + 1)
      continue
    }
    const seq = Number(SEGMENT.exec(entry.name)?.[1] ?? NaN)
    if (!Number.isSafeInteger(seq)) continue
    const segment = makeSegment(seq)
    let size = 0
    try { size = statSize(segment.path) } catch { continue }
    segment.bytes = size
    segment.known = false
    segment.acksLoaded = false
    segment.offMemorySince = Date.now()
    segments.set(seq, segment)
    totalBytes += size
    nextSeq = Math.max(nextSeq, seq + 1)
  }

  function makeSegment (seq: number): Segment {
    const base = join(opts.dir, `journal-${String(seq).padStart(8, '0')}`)
    return {
      seq,
      path: `${base}.rec`,
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
      unreadable: undefined,
      damageReported: false,
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
      if (active !== undefined && active.nextId + notifications.length > MAX_ID) {
        // Never reached by a 16 MiB segment: ends it rather than let its ids pass MAX_ID.
        closeFds(active)
        active = undefined
      }
      if (active === undefined) {
        active = makeSegment(nextSeq++)
        segments.set(active.seq, active)
      }
      const segment = active
      const records: Buffer[] = []
      for (let k = 0; k < notifications.length; k++) {
        const n = notifications[k]
        const record = encodeRecord(segment.nextId + k, JSON.stringify(n.attributes), n.message)
        if (record.length - 16 > MAX_RECORD_BODY_BYTES) {
          return fail(new JournalWriteError('TOO_LARGE', `a record of ${record.length} bytes passes the journal's ${MAX_RECORD_BODY_BYTES}-byte limit`))
        }
        records.push(record)
      }
      const buffer = records.length === 1 ? records[0] : Buffer.concat(records)
      if (totalBytes + buffer.length > opts.maxBytes) {
        return fail(new JournalWriteError('OVER_CAP', `the journal would pass NOTIFY_SPILL_MAX_BYTES (${opts.maxBytes} bytes)`))
      }
      let before = 0
      try {
        if (segment.fd === undefined) {
          makeFolder(opts.dir)
          segment.fd = openAppendNoFollow(segment.path)
          const stat = fstatSync(segment.fd)
          totalBytes += stat.size - segment.bytes
          segment.bytes = stat.size
        }
        before = segment.bytes
        writeAll(segment.fd, buffer, segment.path)
        if (opts.fsync) fdatasyncSync(segment.fd)
      } catch (err) {
        const failure = err instanceof JournalWriteError ? err : new JournalWriteError((err as NodeJS.ErrnoException).code ?? 'EIO', (err as Error).message)
        if (segment.fd !== undefined) {
          // Take back a partial record; where that fails too, a reader skips it (records.ts) and finds the next.
          try { ftruncateSync(segment.fd, before) } catch {}
        }
        closeFds(segment) // the next write opens the path again: a disk made writable is seen at once
        return fail(failure)
      }
      segment.bytes += buffer.length
      totalBytes += buffer.length
      const refs = notifications.map((_, k) => ({ segment, id: segment.nextId + k, bytes: records[k].length }))
      for (const ref of refs) outstanding.add(ref)
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
        if (!giveBack(ref, 'ack')) continue
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
          segment.ackFd ??= openAppendNoFollow(segment.ackPath)
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
        if (!giveBack(ref, 'release')) continue
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
      // One pass: each segment replayable now, once, oldest first; the caller starts the next pass. A
      // segment is never read twice in a pass, so a pass is bounded by what is on disk.
      const pass = [...segments.values()].filter(replayable).sort((a, b) => a.seq - b.seq)
      for (const segment of pass) {
        // Between segments the event loop gets a turn, whatever the reads cost.
        await new Promise(resolve => setImmediate(resolve))
        if (!segments.has(segment.seq) || !replayable(segment)) continue
        if (segment === active) {
          closeFds(segment)
          active = undefined
        }
        segment.replaying = true
        const since = segment.offMemorySince ?? Date.now()
        segment.offMemorySince = undefined
        let damage = { regions: 0, bytes: 0 }
        try {
          if (!segment.acksLoaded) {
            for await (const line of readBoundedLines(segment.ackPath, 16)) {
              // Only ids as this journal writes them: `1e300` or `4294967297` acknowledge nothing.
              if (ACK_ID.test(line) && Number(line) <= MAX_ID) segment.acked.add(Number(line))
            }
            segment.acksLoaded = true
          }
          const records = readRecords(segment.path, MAX_RECORD_BODY_BYTES, (_at, bytes) => {
            damage = { regions: damage.regions + 1, bytes: damage.bytes + bytes }
          })
          const found: number[] = []
          for await (const record of records) {
            if (segment.acked.has(record.id)) continue
            let attributes: Notification['attributes']
            try {
              attributes = JSON.parse(record.attributes)
            } catch {
              damage = { regions: damage.regions + 1, bytes: damage.bytes + record.bytes }
              continue
            }
            if (!segment.known) {
              segment.unacked++
              segment.nextId = Math.max(segment.nextId, record.id + 1)
            }
            segment.resident++
            found.push(record.id)
            const ref: JournalRef = { segment, id: record.id, bytes: record.bytes }
            outstanding.add(ref)
            yield { notification: { message: record.message, attributes }, ref, enqueuedAt: since }
          }
          segment.known = true
          // What the file holds is what counts: records counted but lost to damage no longer keep the
          // segment from being compacted (nor listed for replay again and again).
          segment.unacked = found.filter(id => !segment.acked.has(id)).length
          if (segment.unreadable !== undefined) opts.report?.({ kind: 'readable', path: segment.path })
          segment.unreadable = undefined
        } catch (err) {
          // Skipped, not blocking the others; tried again after UNREADABLE_RETRY_MS, reported once per change.
          const reason = `${(err as NodeJS.ErrnoException).code ?? 'EIO'}: ${(err as Error).message}`
          if (segment.unreadable === undefined) {
            counters.unreadable_segments++
            opts.report?.({ kind: 'unreadable', path: segment.path, reason })
          }
          segment.unreadable = { reason, at: Date.now() }
          segment.offMemorySince = since
        } finally {
          segment.replaying = false
          if (damage.regions > 0 && !segment.damageReported) {
            segment.damageReported = true
            counters.damaged_records += damage.regions
            opts.report?.({ kind: 'damaged', path: segment.path, ...damage })
          }
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
      let unreadable = 0
      for (const s of segments.values()) if (s.unreadable !== undefined) unreadable++
      return { bytes: totalBytes, segments: segments.size, oldest_off_memory: oldest, unreadable_now: unreadable, ...counters }
    },

    get lastFailure () { return lastFailure },

    /** Segments of the earlier line-based format found at start, for legacy.ts (which removes them once imported). */
    legacy,

    close (): void {
      for (const segment of segments.values()) {
        closeFds(segment)
        compact(segment, true)
      }
      active = undefined
      lock.release()
    },
  }

  function replayable (s: Segment): boolean {
    if (s.unreadable !== undefined && Date.now() - s.unreadable.at < UNREADABLE_RETRY_MS) return false
    return !s.replaying && s.resident === 0 && (!s.known || s.unacked > 0)
  }

  /** A path's size, when it is a regular file (not through a symlink). */
  function statSize (path: string): number {
    const stat = lstatSync(path)
    if (!stat.isFile()) throw new Error(`${path} is not a regular file`)
    return stat.size
  }
}

export type Journal = ReturnType<typeof createJournal>
