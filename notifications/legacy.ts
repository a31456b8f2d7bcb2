import { readdirSync, unlinkSync, type Dirent } from 'node:fs'
import { join } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import { MAX_RECORD_BODY_BYTES, type Journal } from './journal.js'
import type { Notification } from './message.js'
import { MAX_ID, readBoundedLines } from './records.js'

/** A line of an earlier format holds a record body plus its JSON framing: at most this long. */
const MAX_LEGACY_LINE_BYTES = 2 * MAX_RECORD_BODY_BYTES

/**
 * Files of earlier versions, moved into the journal at start and then removed:
 * - segments of the line-based journal, `journal-<n>.jsonl` (`{"i":<id>,"a":<attributes>,"m":<message>}`
 *   per line) with their `journal-<n>.acks`: the records not acknowledged;
 * - `spill.jsonl` and `*.replay.jsonl` of versions before the journal (`{"notification": ...}` lines).
 * Streamed, a line at a time, lines past MAX_LEGACY_LINE_BYTES skipped unread (a cut or damaged line
 * is skipped too: what such a file cannot say, it never could). A crash half-way imports a file again
 * on the next start: duplicates, never losses. Only regular files (journal.ts lists them) are read.
 */
export async function importLegacy (dir: string, journal: Journal, log: FastifyBaseLogger): Promise<void> {
  let skipped = 0
  const tooLong = () => { skipped++ }
  for (const { path, ackPath } of journal.legacy) {
    const acked = new Set<number>()
    for await (const line of readBoundedLines(ackPath, 16, tooLong)) if (/^(0|[1-9]\d{0,9})$/.test(line) && Number(line) <= MAX_ID) acked.add(Number(line))
    const count = await importLines(path, line => {
      const record = JSON.parse(line) as { i?: unknown, a?: Notification['attributes'], m?: unknown }
      if (typeof record.i !== 'number' || acked.has(record.i) || record.a === undefined || record.m === undefined) return undefined
      return { message: JSON.stringify(record.m), attributes: record.a }
    })
    for (const file of [path, ackPath]) try { unlinkSync(file) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err }
    log.info({ file: path, notifications: count }, 'journal segment of the earlier line-based format moved into the journal')
  }
  let names: Dirent[] = []
  try {
    names = readdirSync(dir, { withFileTypes: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const spills = names
    .filter(e => e.isFile() && (e.name === 'spill.jsonl' || e.name.endsWith('.replay.jsonl')))
    .map(e => e.name)
    .sort()
  for (const name of spills) {
    const path = join(dir, name)
    const count = await importLines(path, line => (JSON.parse(line) as { notification?: Notification }).notification)
    unlinkSync(path)
    log.info({ file: path, notifications: count }, 'spill file of an earlier version moved into the journal')
  }
  if (skipped > 0) log.warn({ lines: skipped, limit: MAX_LEGACY_LINE_BYTES }, 'lines too long to be records skipped in files of an earlier version')

  /** Appends what `read` makes of each line (in chunks), left on disk for the replay; how many. */
  async function importLines (path: string, read: (line: string) => Notification | undefined): Promise<number> {
    let chunk: Notification[] = []
    let count = 0
    const flush = () => {
      if (chunk.length === 0) return
      const written = journal.append(chunk)
      if (written === undefined) throw journal.lastFailure ?? new Error('journal write failed')
      // Not in memory: the replay reads them back.
      journal.release(written, Date.now())
      count += chunk.length
      chunk = []
    }
    for await (const line of readBoundedLines(path, MAX_LEGACY_LINE_BYTES, tooLong)) {
      let notification: Notification | undefined
      try { notification = read(line) } catch {}
      if (notification !== undefined && typeof notification.message === 'string') chunk.push(notification)
      if (chunk.length >= 100) flush()
    }
    flush()
    return count
  }
}
