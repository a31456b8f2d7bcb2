import { constants, openSync, type PathLike } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { crc32 } from 'node:zlib'

/**
 * The journal's on-disk record: self-delimiting and checked, so no message can break the framing and
 * a damaged record takes none of its neighbours with it.
 *
 *     offset  size  field
 *     0       4     magic FF 4A 52 31 ("\xffJR1"; 0xFF never occurs in UTF-8, so never in a body)
 *     4       4     body length in bytes, unsigned little-endian, at most the reader's maximum
 *     8       4     record id, unsigned little-endian (< 2^31)
 *     12      4     CRC-32 (zlib's) of bytes 4-11 and the body, unsigned little-endian
 *     16      n     body: the attributes as one line of JSON, "\n", the message as SNS carries it (UTF-8)
 *
 * A reader checks the magic, the length against its maximum and the CRC. A record that fails (torn by
 * a crash mid-write, or damaged) is counted, and reading resumes at the next magic whose record checks
 * out: what follows a bad record is still read. No string longer than the maximum is ever built.
 */
export const MAGIC = 0xff4a5231
export const HEADER_BYTES = 16
/** Ids are bit-set indexes (journal.ts): kept below 2^31. */
export const MAX_ID = 0x7fffffff

/** Opens for reading without following a symlink: the folder is the service's own. */
export const openNoFollow = (path: PathLike) => open(path, constants.O_RDONLY | constants.O_NOFOLLOW)

/** openNoFollow, or undefined when the file is gone (acknowledged and deleted meanwhile, say). */
async function openIfPresent (path: string): Promise<FileHandle | undefined> {
  try {
    return await openNoFollow(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}
/** Opens for appending (created 0600) without following a symlink. */
export const openAppendNoFollow = (path: PathLike) =>
  openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)

/** One record's bytes. */
export function encodeRecord (id: number, attributes: string, message: string): Buffer {
  const bodyBytes = Buffer.byteLength(attributes) + 1 + Buffer.byteLength(message)
  const out = Buffer.allocUnsafe(HEADER_BYTES + bodyBytes)
  out.writeUInt32BE(MAGIC, 0)
  out.writeUInt32LE(bodyBytes, 4)
  out.writeUInt32LE(id, 8)
  let at = HEADER_BYTES + out.write(attributes, HEADER_BYTES, 'utf8')
  out[at++] = 0x0a
  out.write(message, at, 'utf8')
  out.writeUInt32LE(checksum(out, 0), 12)
  return out
}

/** CRC-32 of a record's length, id and body, the record starting at `at` of `buffer`. */
function checksum (buffer: Buffer, at: number): number {
  const length = buffer.readUInt32LE(at + 4)
  return crc32(buffer.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length), crc32(buffer.subarray(at + 4, at + 12)))
}

export interface ReadRecord { id: number, attributes: string, message: string, bytes: number }

/**
 * The records of a file, in order, streamed through one buffer. `onDamage` hears of each run of bytes
 * skipped (a torn or corrupt record), with its offset and length.
 */
export async function * readRecords (path: string, maxBodyBytes: number, onDamage: (at: number, bytes: number) => void): AsyncGenerator<ReadRecord> {
  const file = await openIfPresent(path)
  if (file === undefined) return
  try {
    const size = (await file.stat()).size
    const capacity = Math.max(1024 * 1024, HEADER_BYTES + maxBodyBytes)
    const buffer = Buffer.allocUnsafe(capacity)
    let start = 0 // file offset of buffer[0]
    let filled = 0
    /** Whether bytes [at, at + n) of the file are in the buffer, reading them in if need be. */
    const have = async (at: number, n: number): Promise<boolean> => {
      if (at >= start && at + n <= start + filled) return true
      if (at + n > size) return false
      start = at
      filled = 0
      while (filled < Math.min(capacity, size - at)) {
        const { bytesRead } = await file.read(buffer, filled, Math.min(capacity, size - at) - filled, at + filled)
        if (bytesRead === 0) break
        filled += bytesRead
      }
      return at + n <= start + filled
    }
    let pos = 0
    while (pos < size) {
      let ok = false
      let length = 0
      if (await have(pos, HEADER_BYTES) && buffer.readUInt32BE(pos - start) === MAGIC) {
        length = buffer.readUInt32LE(pos - start + 4)
        ok = length <= maxBodyBytes && buffer.readUInt32LE(pos - start + 8) <= MAX_ID && await have(pos, HEADER_BYTES + length) &&
          checksum(buffer, pos - start) === buffer.readUInt32LE(pos - start + 12)
      }
      if (ok) {
        const body = buffer.subarray(pos - start + HEADER_BYTES, pos - start + HEADER_BYTES + length)
        const newline = body.indexOf(0x0a)
        if (newline !== -1) {
          yield { id: buffer.readUInt32LE(pos - start + 8), attributes: body.toString('utf8', 0, newline), message: body.toString('utf8', newline + 1), bytes: HEADER_BYTES + length }
        } else {
          onDamage(pos, HEADER_BYTES + length)
        }
        pos += HEADER_BYTES + length
        continue
      }
      // Damaged: find the next magic after this one.
      const from = pos
      pos = await nextMagic(pos + 1)
      onDamage(from, pos - from)
    }

    async function nextMagic (from: number): Promise<number> {
      const marker = Buffer.from([0xff, 0x4a, 0x52, 0x31])
      for (let at = from; at < size;) {
        if (!await have(at, Math.min(4, size - at))) return size
        const found = buffer.subarray(0, filled).indexOf(marker, at - start)
        if (found !== -1) return start + found
        if (start + filled >= size) return size
        at = start + filled - 3 // a marker may straddle the buffer's end
      }
      return size
    }
  } finally {
    await file.close()
  }
}

/**
 * A text file's lines, streamed; a line longer than `maxLineBytes` is skipped whole (reported to
 * `onTooLong`) without being built. For the acknowledgement files and the files of earlier versions.
 */
export async function * readBoundedLines (path: string, maxLineBytes: number, onTooLong: () => void = () => {}): AsyncGenerator<string> {
  const file = await openIfPresent(path)
  if (file === undefined) return
  try {
    const chunk = Buffer.allocUnsafe(64 * 1024)
    let parts: Buffer[] = []
    let partBytes = 0
    let skipping = false
    for (;;) {
      const { bytesRead } = await file.read(chunk, 0, chunk.length, null)
      if (bytesRead === 0) break
      let from = 0
      for (let nl = chunk.indexOf(0x0a, from); from < bytesRead; nl = chunk.indexOf(0x0a, from)) {
        const end = nl === -1 || nl >= bytesRead ? bytesRead : nl
        if (!skipping) {
          if (partBytes + end - from > maxLineBytes) {
            skipping = true
            parts = []
            partBytes = 0
            onTooLong()
          } else {
            parts.push(Buffer.from(chunk.subarray(from, end)))
            partBytes += end - from
          }
        }
        if (end === bytesRead) break
        if (!skipping) yield Buffer.concat(parts).toString('utf8').replace(/\r$/, '')
        parts = []
        partBytes = 0
        skipping = false
        from = end + 1
      }
    }
    if (!skipping && partBytes > 0) yield Buffer.concat(parts).toString('utf8').replace(/\r$/, '')
  } finally {
    await file.close()
  }
}
