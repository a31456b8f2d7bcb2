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

/** The rows a message carries: its `rows` attribute (request grouping), else 1. */
function rowsIn (form: URLSearchParams, prefix: string): number {
  for (let i = 1; form.has(`${prefix}MessageAttributes.entry.${i}.Name`); i++) {
    if (form.get(`${prefix}MessageAttributes.entry.${i}.Name`) === 'rows') return Number(form.get(`${prefix}MessageAttributes.entry.${i}.Value.StringValue`))
  }
  return 1
}

async function sns (req: IncomingMessage, res: ServerResponse) {
  const form = new URLSearchParams(await readBody(req))
  counts.sns_calls++
  let members = ''
  if (form.get('Action') === 'PublishBatch') {
    for (let i = 1; form.has(`PublishBatchRequestEntries.member.${i}.Id`); i++) {
      counts.sns_messages++
      counts.sns_rows += rowsIn(form, `PublishBatchRequestEntries.member.${i}.`)
      members += `<member><Id>${form.get(`PublishBatchRequestEntries.member.${i}.Id`)}</Id><MessageId>m${i}</MessageId></member>`
    }
    res.writeHead(200, { 'content-type': 'text/xml' })
    return res.end(`<PublishBatchResponse><PublishBatchResult><Successful>${members}</Successful><Failed></Failed></PublishBatchResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishBatchResponse>`)
  }
  counts.sns_messages++
  counts.sns_rows += rowsIn(form, '')
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
