/**
 * Loopback stand-ins for AWS in the benchmark, in their own process so they do not share the
 * service's event loop: SageMaker InvokeEndpoint answering after 0 ms and after 20 ms (an answer per
 * row, 1 for odd flow_iat_min), and an SNS Query endpoint accepting Publish and PublishBatch. Each
 * counts its calls; GET /counts on the control port reports them.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

const counts = { invoke_0ms: 0, invoke_20ms: 0, invoke_rows: 0, sns_calls: 0, sns_messages: 0, sns_rows: 0 }

function readBody (req: IncomingMessage): Promise<string> {
  return new Promise(resolve => {
    const chunks: Buffer[] = []
    req.on('data', chunk => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
  })
}

function sagemaker (delayMs: number, key: 'invoke_0ms' | 'invoke_20ms') {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const frame = JSON.parse(await readBody(req)) as { columns: string[], data: number[][] }
    counts[key]++
    counts.invoke_rows += frame.data.length
    const at = frame.columns.indexOf('flow_iat_min')
    const body = JSON.stringify(frame.data.map(row => Math.abs(Math.round(row[at] ?? 0)) % 2))
    const answer = () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(body) }
    if (delayMs > 0) setTimeout(answer, delayMs)
    else answer()
  }
}

/**
 * A PublishBatch entry's or a Publish call's message attributes, `Name=rows` answering its row count
 * (request grouping), else 1 row. Read with regular expressions from the raw form, without decoding
 * it: this process stands in for AWS's machines, and decoding ~250 KB per call would take CPU from
 * the service under test on a small machine (bench/README.md reports this process's CPU).
 */
const ENTRY_ID = /PublishBatchRequestEntries\.member\.(\d+)\.Id=([^&]*)/g
const ROWS_NAME = /(PublishBatchRequestEntries\.member\.(\d+)\.)?MessageAttributes\.entry\.(\d+)\.Name=rows(?:&|$)/g

function rowsByEntry (form: string): Map<string, number> {
  const rows = new Map<string, number>()
  for (const match of form.matchAll(ROWS_NAME)) {
    const prefix = `${match[1] ?? ''}MessageAttributes.entry.${match[3]}.Value.StringValue=`
    const at = form.indexOf(prefix)
    if (at !== -1) rows.set(match[2] ?? '', Number(/^\d+/.exec(form.slice(at + prefix.length, at + prefix.length + 12))?.[0] ?? 1))
  }
  return rows
}

async function sns (req: IncomingMessage, res: ServerResponse) {
  const form = await readBody(req)
  counts.sns_calls++
  const rows = rowsByEntry(form)
  if (form.includes('Action=PublishBatch')) {
    let members = ''
    for (const [, member, id] of form.matchAll(ENTRY_ID)) {
      counts.sns_messages++
      counts.sns_rows += rows.get(member) ?? 1
      members += `<member><Id>${decodeURIComponent(id)}</Id><MessageId>m${member}</MessageId></member>`
    }
    res.writeHead(200, { 'content-type': 'text/xml' })
    return res.end(`<PublishBatchResponse><PublishBatchResult><Successful>${members}</Successful><Failed></Failed></PublishBatchResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishBatchResponse>`)
  }
  counts.sns_messages++
  counts.sns_rows += rows.get('') ?? 1
  res.writeHead(200, { 'content-type': 'text/xml' })
  res.end('<PublishResponse><PublishResult><MessageId>m</MessageId></PublishResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishResponse>')
}

async function listen (handler: (req: IncomingMessage, res: ServerResponse) => unknown) {
  const server = createServer((req, res) => { handler(req, res) })
  server.keepAliveTimeout = 65_000
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

const ports = {
  sagemaker_0ms: await listen(sagemaker(0, 'invoke_0ms')),
  sagemaker_20ms: await listen(sagemaker(20, 'invoke_20ms')),
  sns: await listen(sns),
  control: await listen((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(counts)) }),
}
console.log(JSON.stringify(ports))
process.on('SIGTERM', () => process.exit(0))
