import { closeSync, constants, createWriteStream, openSync, type WriteStream } from 'node:fs'
import { ConfigError } from '../errors.js'
import { dirname } from 'node:path'
import { once } from 'node:events'
import { makeFolder, namesOpenFile } from './files.js'

/**
 * An append-only JSON-lines file written in the background (the dead letters, NOTIFY_LOG_FILE),
 * opened on first write. Writes are ordered; `close` waits until everything written has reached the
 * file. A write error is reported to `onError` once until a line is written again, and the next
 * write tries to open the file again. With `reopenWhenMovedMs`, a file moved or deleted (a log
 * rotation's default `create` mode) is noticed within that time and the lines that follow go to a
 * new file at the path, as Python's WatchedFileHandler does.
 */
export function createJsonLinesFile (path: string, onError: (err: Error) => void, opts: { noFollow?: boolean, reopenWhenMovedMs?: number } = {}) {
  let stream: WriteStream | undefined
  /** The open file's descriptor, once the stream has opened it. */
  let fd: number | undefined
  // Reported once until a line is written again: a file that cannot be written (a full disk) fails every write.
  let failing = false
  const report = (err: Error) => {
    if (failing) return
    failing = true
    onError(err)
  }

  const written = (err?: Error | null) => { if (err == null) failing = false }

  function open (): WriteStream | undefined {
    if (stream === undefined) {
      try {
        makeFolder(dirname(path))
      } catch (err) {
        // Its folder cannot be made (permissions, a file in the way): the line is not written, and the
        // request that produced it is answered all the same.
        report(err as Error)
        return undefined
      }
      // In the service's own folder (the dead letters), a symlink is never followed.
      // (fs.open takes numeric flags; the stream hands them on, though its type says string.)
      const flags = opts.noFollow === true ? constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW : 'a'
      const opened = createWriteStream(path, { flags: flags as string, mode: 0o600 })
      opened.on('error', err => {
        if (stream === opened) stream = undefined
        report(err)
      })
      opened.on('open', (opening: number) => { if (stream === opened) fd = opening })
      stream = opened
      fd = undefined
    }
    return stream
  }

  /** Whether the path still names the open file (false: moved away or deleted); true when unsure. */
  function stillAtPath (open: number): boolean {
    try {
      return namesOpenFile(path, open, { followLinks: true })
    } catch {
      return true
    }
  }
  /** Streams of moved files, ending: close waits for them. */
  const retiring = new Set<WriteStream>()
  const watch = opts.reopenWhenMovedMs === undefined
    ? undefined
    : setInterval(() => {
      const current = stream
      if (current === undefined || fd === undefined || stillAtPath(fd)) return
      // What was written so far reaches the moved file (close waits for it); the next line opens the path anew.
      stream = undefined
      fd = undefined
      retiring.add(current)
      current.end(() => retiring.delete(current))
    }, opts.reopenWhenMovedMs).unref()

  return {
    append (record: unknown): void {
      open()?.write(JSON.stringify(record) + '\n', written)
    },
    /** A record already serialised as one line of JSON. */
    appendJson (json: string): void {
      open()?.write(json + '\n', written)
    },
    async close (): Promise<void> {
      clearInterval(watch)
      const current = stream
      stream = undefined
      await Promise.all([...retiring].map(ending => ending.closed ? undefined : once(ending, 'close').catch(() => {})))
      if (current === undefined || current.destroyed) return
      current.end()
      if (!current.closed) await once(current, 'close').catch(() => {})
    },
  }
}

export type JsonLinesFile = ReturnType<typeof createJsonLinesFile>

/**
 * Start-up's check of a file the configuration names (`variable`): its folder is made and it opens
 * for appending, or start-up fails with one line naming the variable, the path and why.
 */
export function checkAppendable (path: string, variable: string): void {
  try {
    makeFolder(dirname(path))
    closeSync(openSync(path, 'a', 0o600))
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    throw new ConfigError(`${variable} ${path} cannot be appended to: ${e.code ?? 'error'} (${e.message}). Point ${variable} at a file the service's user can create and write`)
  }
}
