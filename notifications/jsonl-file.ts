import { constants, createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { dirname } from 'node:path'
import { once } from 'node:events'

/**
 * An append-only JSON-lines file written in the background (the dead letters, NOTIFY_LOG_FILE),
 * opened on first write. Writes are ordered; `close` waits until everything written has reached the
 * file. A write error is reported once to `onError`, and the next write opens the file again.
 */
export function createJsonLinesFile (path: string, onError: (err: Error) => void, opts: { noFollow?: boolean } = {}) {
  let stream: WriteStream | undefined

  function open (): WriteStream {
    if (stream === undefined) {
      mkdirSync(dirname(path), { recursive: true })
      // In the service's own folder (the dead letters), a symlink is never followed.
      // (fs.open takes numeric flags; the stream hands them on, though its type says string.)
      const flags = opts.noFollow === true ? constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW : 'a'
      const opened = createWriteStream(path, { flags: flags as string, mode: 0o600 })
      opened.on('error', err => {
        if (stream === opened) stream = undefined
        onError(err)
      })
      stream = opened
    }
    return stream
  }

  return {
    append (record: unknown): void {
      open().write(JSON.stringify(record) + '\n')
    },
    /** A record already serialised as one line of JSON. */
    appendJson (json: string): void {
      open().write(json + '\n')
    },
    async close (): Promise<void> {
      const current = stream
      stream = undefined
      if (current === undefined || current.destroyed) return
      current.end()
      if (!current.closed) await once(current, 'close').catch(() => {})
    },
  }
}

export type JsonLinesFile = ReturnType<typeof createJsonLinesFile>
