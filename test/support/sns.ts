import { randomUUID } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import type { Test } from 'tap'
import { loopback, type RecordedRequest } from './loopback.js'

/** A message as SNS received it. */
export interface Received {
  topic: string
  message: string
  attributes: Record<string, { type: string, value: string }>
}

export interface EntryFailure {
  code: string
  senderFault: boolean
}

/** A message's size as SNS counts it against its 256 KiB: body plus attribute names, types and values. */
export const sizeOf = (m: Received) =>
  Buffer.byteLength(m.message) + Object.entries(m.attributes).reduce((sum, [name, v]) => sum + Buffer.byteLength(name) + Buffer.byteLength(v.type) + Buffer.byteLength(v.value), 0)
const LIMIT = 256 * 1024

/**
 * A loopback SNS speaking the Query protocol (form-encoded `Action=Publish` / `PublishBatch`, XML
 * answers), for the real @aws-sdk/client-sns, with SNS's size limits: a message over 256 KiB is
 * refused (InvalidParameter), and so is a batch over 256 KiB in all (BatchRequestTooLong).
 * `decide` chooses, per call and per entry, what else to answer.
 */
export async function snsServer (t: Test, decide: {
  call?: (call: { action: string, entries: Received[], number: number }) => { status: number, code: string } | undefined
  entry?: (entry: Received) => EntryFailure | undefined
  delayMs?: number
  /** Calls wait for this before they are answered (and their messages accepted). */
  gate?: Promise<void>
  /** `empty`: a 200 with an empty body, confirming nothing; `omit`: a PublishBatch answer listing the entries `omit` picks in neither list. Neither is accepted. */
  unconfirmed?: (call: { action: string, entries: Received[], number: number }) => 'empty' | undefined
  omit?: (entry: Received) => boolean
} = {}) {
  const accepted: Received[] = []
  const calls: Array<{ action: string, entries: number }> = []
  const server = await loopback(t, async (req, res) => {
    const form = new URLSearchParams(req.body)
    const action = form.get('Action') ?? ''
    const topic = form.get('TopicArn') ?? ''
    const entries = action === 'PublishBatch' ? batchEntries(form, topic) : [{ id: '', ...single(form, '', topic) }]
    calls.push({ action, entries: entries.length })
    if (decide.delayMs) await new Promise(resolve => setTimeout(resolve, decide.delayMs).unref())
    if (decide.gate) await decide.gate
    const total = entries.reduce((sum, e) => sum + sizeOf(e), 0)
    const failure = decide.call?.({ action, entries, number: calls.length }) ??
      (action === 'PublishBatch' && total > LIMIT ? { status: 400, code: 'BatchRequestTooLong' } : undefined)
    if (failure) return xml(res, failure.status, `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>${failure.status < 500 ? 'Sender' : 'Receiver'}</Type><Code>${failure.code}</Code><Message>${failure.code} happened</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`)
    if (decide.unconfirmed?.({ action, entries, number: calls.length }) === 'empty') {
      res.writeHead(200, { 'content-type': 'text/xml' })
      res.end()
      return
    }
    if (action === 'Publish') {
      const entryFailure = decide.entry?.(entries[0]) ?? (sizeOf(entries[0]) > LIMIT ? { code: 'InvalidParameter', senderFault: true } : undefined)
      if (entryFailure) return xml(res, entryFailure.senderFault ? 400 : 500, `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>${entryFailure.code}</Code><Message>refused</Message></Error><RequestId>r</RequestId></ErrorResponse>`)
      accepted.push(strip(entries[0]))
      return xml(res, 200, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>${randomUUID()}</MessageId></PublishResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></PublishResponse>`)
    }
    let successful = ''
    let failed = ''
    for (const entry of entries) {
      if (decide.omit?.(entry) === true) continue
      const entryFailure = decide.entry?.(entry) ?? (sizeOf(entry) > LIMIT ? { code: 'InvalidParameter', senderFault: true } : undefined)
      if (entryFailure) {
        failed += `<member><Id>${entry.id}</Id><Code>${entryFailure.code}</Code><Message>refused</Message><SenderFault>${entryFailure.senderFault}</SenderFault></member>`
      } else {
        accepted.push(strip(entry))
        successful += `<member><Id>${entry.id}</Id><MessageId>${randomUUID()}</MessageId></member>`
      }
    }
    xml(res, 200, `<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishBatchResult><Successful>${successful}</Successful><Failed>${failed}</Failed></PublishBatchResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></PublishBatchResponse>`)
  })
  return { url: server.url, requests: server.requests as RecordedRequest[], accepted, calls }
}

function single (form: URLSearchParams, prefix: string, topic: string): Received {
  const attributes: Received['attributes'] = {}
  for (let i = 1; form.has(`${prefix}MessageAttributes.entry.${i}.Name`); i++) {
    attributes[form.get(`${prefix}MessageAttributes.entry.${i}.Name`)!] = {
      type: form.get(`${prefix}MessageAttributes.entry.${i}.Value.DataType`)!,
      value: form.get(`${prefix}MessageAttributes.entry.${i}.Value.StringValue`)!,
    }
  }
  return { topic, message: form.get(`${prefix}Message`) ?? '', attributes }
}

function batchEntries (form: URLSearchParams, topic: string) {
  const entries: Array<Received & { id: string }> = []
  for (let i = 1; form.has(`PublishBatchRequestEntries.member.${i}.Id`); i++) {
    const prefix = `PublishBatchRequestEntries.member.${i}.`
    entries.push({ id: form.get(`${prefix}Id`)!, ...single(form, prefix, topic) })
  }
  return entries
}

const strip = ({ topic, message, attributes }: Received): Received => ({ topic, message, attributes })

function xml (res: ServerResponse, status: number, body: string) {
  res.writeHead(status, { 'content-type': 'text/xml' })
  res.end(body)
}
