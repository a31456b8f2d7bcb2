import { createWriteStream, existsSync, mkdirSync, renameSync, type WriteStream } from 'node:fs'
import { dirname } from 'node:path'
import { once } from 'node:events'

/**
 * An append-only JSON-lines file, opened on first write. Writes are ordered; `close` waits until
 * everything written has reached the file.
 */
export function createJournal (path: string) {
  let stream: WriteStream | undefined
  let failure: Error | undefined

  function open (): WriteStream {
    if (stream === undefined) {
      mkdirSync(dirname(path), { recursive: true })
      stream = createWriteStream(path, { flags: 'a' })
      stream.on('error', err => { failure = err })
    }
    return stream
  }

  return {
    path,
    append (record: unknown): void {
      open().write(JSON.stringify(record) + '\n')
    },
    /** A record already serialised as one line of JSON. */
    appendJson (json: string): void {
      open().write(json + '\n')
    },
    /** The last write error, if any (a full disk, a read-only folder). */
    get failure () { return failure },
    /**
     * Moves the file to `to`; later records go to a new file at `path`. Resolves once every record
     * written before has reached the moved file (the old stream keeps its descriptor across the rename).
     */
    async rotate (to: string): Promise<void> {
      const current = stream
      stream = undefined
      if (existsSync(path)) renameSync(path, to)
      await finish(current)
    },
    async close (): Promise<void> {
      const current = stream
      stream = undefined
      await finish(current)
    },
  }
}

async function finish (stream: WriteStream | undefined): Promise<void> {
  if (stream === undefined) return
  stream.end()
  if (!stream.closed) await once(stream, 'close')
}

export type Journal = ReturnType<typeof createJournal>
