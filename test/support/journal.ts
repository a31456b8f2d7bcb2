import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'

/** The journal's segments and acknowledgement files in a data folder. */
export const journalFiles = (dir: string) => readdirSync(dir).filter(f => f.startsWith('journal-'))

/**
 * The records of a segment file, decoded here independently of notifications/records.ts (magic, length,
 * id, CRC-32, body "attributes\nmessage"); stops at the first record that does not check out.
 */
export function segmentRecords (path: string) {
  const bytes = readFileSync(path)
  const out: Array<{ id: number, message: string, attributes: Record<string, string> }> = []
  for (let at = 0; at + 16 <= bytes.length;) {
    const length = bytes.readUInt32LE(at + 4)
    if (bytes.readUInt32BE(at) !== 0xff4a5231 || at + 16 + length > bytes.length) break
    const body = bytes.subarray(at + 16, at + 16 + length)
    if (crc32(body, crc32(bytes.subarray(at + 4, at + 12))) !== bytes.readUInt32LE(at + 12)) break
    const text = body.toString('utf8')
    const newline = text.indexOf('\n')
    out.push({ id: bytes.readUInt32LE(at + 8), attributes: JSON.parse(text.slice(0, newline)), message: text.slice(newline + 1) })
    at += 16 + length
  }
  return out
}

/** The journal's records not yet acknowledged: what the next start would publish. */
export function onDisk (dir: string) {
  const out: Array<{ message: string, attributes: Record<string, string> }> = []
  for (const name of readdirSync(dir).filter(f => /^journal-\d+\.rec$/.test(f)).sort()) {
    const ackFile = join(dir, name.replace('.rec', '.acks'))
    const acked = new Set(existsSync(ackFile) ? readFileSync(ackFile, 'utf8').split('\n').filter(Boolean).map(Number) : [])
    for (const record of segmentRecords(join(dir, name))) {
      if (!acked.has(record.id)) out.push({ message: record.message, attributes: record.attributes })
    }
  }
  return out
}

/** `request_id:index label` of every row a set of messages carries. */
export const rowsOf = (messages: Array<{ message: string, attributes: Record<string, string | { value: string }> }>) =>
  messages.flatMap(m => {
    const id = m.attributes.request_id
    return (JSON.parse(m.message).index as unknown[]).map(label => `${typeof id === 'string' ? id : id.value}:${String(label)}`)
  })
