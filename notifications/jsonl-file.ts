import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { dirname } from 'node:path'
import { once } from 'node:events'

/**
 * An append-only JSON-lines file written in the background (the dead letters, NOTIFY_LOG_FILE),
 * opened on first write. Writes are ordered; `close` waits until everything written has reached the
 * file. A write error is reported once to `onError`, and the next write opens the file again.
 */
export function createJsonLinesFile (path: string, onError: (err: Error) => void) {
  let stream: WriteStream | undefined

  function open (): WriteStream {
    if (stream === undefined) {
      mkdirSync(dirname(path), { recursive: true })
      const opened = createWriteStream(path, { flags: 'a' })
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
