import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/** The journal's segments and acknowledgement files in a data folder. */
export const journalFiles = (dir: string) => readdirSync(dir).filter(f => f.startsWith('journal-'))

/** The journal's records not yet acknowledged: what the next start would publish. */
export function onDisk (dir: string) {
  const out: Array<{ message: string, attributes: Record<string, string> }> = []
  for (const name of readdirSync(dir).filter(f => /^journal-\d+\.jsonl$/.test(f)).sort()) {
    const ackFile = join(dir, name.replace('.jsonl', '.acks'))
    const acked = new Set(existsSync(ackFile) ? readFileSync(ackFile, 'utf8').split('\n').filter(Boolean).map(Number) : [])
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      if (line === '') continue
      const record = JSON.parse(line)
      if (!acked.has(record.i)) out.push({ message: JSON.stringify(record.m), attributes: record.a })
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
