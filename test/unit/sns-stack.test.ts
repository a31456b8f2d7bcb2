import t from 'tap'
import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import type { ServerResponse } from 'node:http'
import { HttpRequest } from '@smithy/core/protocols'
import { ListTopicsCommand, PublishBatchCommand, PublishCommand, SNSClient, type SNSClientConfig } from '@aws-sdk/client-sns'
import type { Notification } from '../../notifications/message.js'
import { createSender, createSnsClient } from '../../notifications/sender.js'
import { SnsQueryProtocol } from '../../notifications/sns-query.js'
import { handlerConfig, leanStack } from '../../notifications/sns-stack.js'
import { loopback } from '../support/loopback.js'
import { signatureMatches } from '../support/sigv4.js'
import { senderConfig as config, TOPIC } from '../support/notifications.js'

const NS = 'xmlns="http://sns.amazonaws.com/doc/2010-03-31/"'
const xml = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': 'req-1', ...headers })
  res.end(body)
}
const error = (type: string, code: string, message: string) => `<ErrorResponse ${NS}><Error><Type>${type}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>req-1</RequestId></ErrorResponse>`

// What SNS answers (success, partial failure, errors) and what it should not (garbled XML, empty bodies).
const answers: Array<{ name: string, status: number, body: string, headers?: Record<string, string> }> = [
  { name: 'Publish answered', status: 200, body: `<PublishResponse ${NS}><PublishResult><MessageId>a3f1</MessageId><SequenceNumber>10000000000000003000</SequenceNumber></PublishResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></PublishResponse>` },
  { name: 'PublishBatch, partly failed', status: 200, body: `<PublishBatchResponse ${NS}><PublishBatchResult><Successful><member><Id>0</Id><MessageId>m0</MessageId></member><member><Id>2</Id><MessageId>m2</MessageId><SequenceNumber>7</SequenceNumber></member></Successful><Failed><member><Id>1</Id><Code>InvalidParameter</Code><Message>bad &lt;attribute&gt; &amp; &quot;value&quot;</Message><SenderFault>true</SenderFault></member><member><Id>3</Id><Code>InternalError</Code><SenderFault>false</SenderFault></member></Failed></PublishBatchResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></PublishBatchResponse>` },
  { name: 'PublishBatch, empty lists', status: 200, body: `<PublishBatchResponse ${NS}><PublishBatchResult><Successful/><Failed></Failed></PublishBatchResult></PublishBatchResponse>` },
  { name: '400 InvalidParameter', status: 400, body: error('Sender', 'InvalidParameter', 'Invalid parameter: Message too long') },
  { name: '400 BatchRequestTooLong', status: 400, body: error('Sender', 'BatchRequestTooLong', 'too long') },
  { name: '500 InternalError', status: 500, body: error('Receiver', 'InternalError', 'oops') },
  { name: '403 with a code the SDK does not know', status: 403, body: error('Sender', 'SomethingNew', 'new'), headers: { 'x-amz-id-2': 'ext' } },
  { name: '200 with garbled XML', status: 200, body: '<PublishResponse><PublishResult><MessageId>x</Mess' },
  { name: '200 with an empty body', status: 200, body: '' },
  { name: '404 with an empty body', status: 404, body: '' },
]

/** An error as a caller sees it: its class, fields, metadata and the answer it came with. */
function describe (err: unknown) {
  const e = err as Error & { $response?: { statusCode: number }, $metadata?: unknown }
  return { constructor: e.constructor.name, name: e.name, message: e.message, fields: { ...e }, metadata: e.$metadata, status: e.$response?.statusCode }
}

async function outcome (call: () => Promise<unknown>) {
  try {
    return { output: await call() }
  } catch (err) {
    return { error: describe(err) }
  }
}

const sdkClient = (url: string, extra: SNSClientConfig = {}) => new SNSClient({ region: 'eu-west-1', endpoint: url, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }, maxAttempts: 1, ...extra })

t.test('the lean client answers what the SDK\'s client answers: outputs and errors, over SNS\'s answer shapes', async t => {
  const sns = await loopback(t, (_req, res) => xml(res, 200, ''))
  const sdk = sdkClient(sns.url)
  const lean = createSnsClient(config(sns.url))
  t.teardown(() => { sdk.destroy(); lean.destroy() })
  const commands = () => [
    new PublishCommand({ TopicArn: TOPIC, Message: 'one', MessageAttributes: { prediction: { DataType: 'String', StringValue: 'attack' } } }),
    new PublishBatchCommand({ TopicArn: TOPIC, PublishBatchRequestEntries: [{ Id: '0', Message: 'a' }, { Id: '1', Message: 'b' }] }),
  ]
  let compared = 0
  for (const answer of answers) {
    sns.answer((_req, res) => xml(res, answer.status, answer.body, answer.headers))
    for (const [i, command] of commands().entries()) {
      const expected = await outcome(() => sdk.send(command as PublishCommand))
      // client.send, and the handler as createSender resolves it (with handlerConfig's copy of the config).
      const sent = await outcome(() => lean.send(commands()[i] as PublishCommand))
      const handler = (commands()[i] as PublishCommand).resolveMiddleware(lean.middlewareStack as never, handlerConfig(lean), {})
      const resolved = await outcome(() => handler(commands()[i] as never).then(r => r.output))
      t.same(sent, expected, `${answer.name}, ${command.constructor.name}, client.send`)
      t.same(resolved, expected, `${answer.name}, ${command.constructor.name}, resolved handler`)
      compared++
    }
  }
  t.equal(compared, answers.length * 2)
  // The shapes the sender relies on did come out as such (the comparison above is not of two empty answers).
  sns.answer((_req, res) => xml(res, 200, answers[1].body))
  t.match(await lean.send(commands()[1] as PublishBatchCommand), { Successful: [{ Id: '0', MessageId: 'm0' }, { Id: '2', SequenceNumber: '7' }], Failed: [{ Id: '1', Code: 'InvalidParameter', Message: 'bad <attribute> & "value"', SenderFault: true }, { Id: '3', SenderFault: false }] })
  sns.answer((_req, res) => xml(res, 400, answers[3].body))
  t.match(await outcome(() => lean.send(commands()[0] as PublishCommand)), { error: { constructor: 'InvalidParameterException', name: 'InvalidParameterException', message: 'Invalid parameter: Message too long', metadata: { httpStatusCode: 400, requestId: 'req-1' }, status: 400 } })
  sns.answer((_req, res) => xml(res, 200, answers[7].body))
  t.match(await outcome(() => lean.send(commands()[0] as PublishCommand)), { error: { message: /Deserialization error/, metadata: { httpStatusCode: 200, requestId: 'req-1' }, status: 200 } })
})

t.test('the same request as the SDK\'s client builds: endpoint, path, headers and body, at a custom endpoint and at AWS\'s', async t => {
  class Captured extends Error {
    constructor (readonly request: HttpRequest) { super('captured') }
  }
  const capture = (client: SNSClient) => {
    client.middlewareStack.add(() => async args => { throw new Captured(args.request as HttpRequest) }, { step: 'build', priority: 'low', name: 'capture' })
    return client
  }
  const requestOf = async (client: SNSClient, command: PublishCommand | PublishBatchCommand | ListTopicsCommand, viaHandler: boolean) => {
    try {
      if (viaHandler) await command.resolveMiddleware(client.middlewareStack as never, handlerConfig(client), {})(command as never)
      else await client.send(command as PublishCommand)
    } catch (err) {
      if (!(err instanceof Captured)) throw err
      return { ...err.request, body: Buffer.from(err.request.body as string | Uint8Array).toString('latin1') }
    }
    throw new Error('not captured')
  }
  for (const endpoint of ['http://127.0.0.1:9', undefined]) {
    const sdk = capture(sdkClient(endpoint!, { protocol: SnsQueryProtocol }))
    const lean = capture(leanStack(sdkClient(endpoint!, { protocol: SnsQueryProtocol })))
    t.teardown(() => { sdk.destroy(); lean.destroy() })
    const commands = () => [
      new PublishCommand({ TopicArn: TOPIC, Message: 'é ! (x)', MessageAttributes: { rows: { DataType: 'Number', StringValue: '3' } } }),
      new PublishBatchCommand({ TopicArn: TOPIC, PublishBatchRequestEntries: [{ Id: '0', Message: 'a' }] }),
      new ListTopicsCommand({ NextToken: 'n' }),
    ]
    for (const [i, command] of commands().entries()) {
      const expected = await requestOf(sdk, command, false)
      t.same(await requestOf(lean, commands()[i], false), expected, `${endpoint ?? 'AWS'}: ${command.constructor.name}`)
      t.same(await requestOf(lean, commands()[i], true), expected, `${endpoint ?? 'AWS'}: ${command.constructor.name}, resolved handler`)
    }
    if (endpoint === undefined) t.match(await requestOf(lean, commands()[0], true), { hostname: 'sns.eu-west-1.amazonaws.com', protocol: 'https:', path: '/' })
  }
})

t.test('the lean client signs every call with the credentials of the moment, and the SDK retries', async t => {
  let failNext = true
  const sns = await loopback(t, (req, res) => {
    if (failNext) {
      failNext = false
      return xml(res, 500, error('Receiver', 'InternalError', 'try again'))
    }
    xml(res, 200, req.body.includes('Action=PublishBatch')
      ? `<PublishBatchResponse ${NS}><PublishBatchResult><Successful><member><Id>0</Id><MessageId>m</MessageId></member><member><Id>1</Id><MessageId>n</MessageId></member></Successful><Failed/></PublishBatchResult></PublishBatchResponse>`
      : `<PublishResponse ${NS}><PublishResult><MessageId>m</MessageId></PublishResult></PublishResponse>`)
  })
  // Credentials that expire within the SDK's refresh window: the SDK asks for new ones on every call.
  let issued = 0
  const credentials = async () => {
    issued++
    return { accessKeyId: `AKID${issued}`, secretAccessKey: `secret${issued}`, sessionToken: `token${issued}`, expiration: new Date(Date.now() + 60_000) }
  }
  const client = leanStack(sdkClient(sns.url, { protocol: SnsQueryProtocol, maxAttempts: 3, credentials }))
  const sender = createSender(client, TOPIC)
  t.teardown(() => sender.close())
  const aborter = new AbortController()
  setMaxListeners(0, aborter.signal)
  const note: Notification = { message: '{"a":"é ! (x)"}', attributes: { prediction: 'attack', model: 'm', request_id: 'r' } }
  t.same(await sender.send([note], aborter.signal), [{ status: 'published' }])
  t.equal(sns.requests.length, 2, 'the first attempt failed with a 500 and the SDK tried again')
  t.equal(sns.requests[1].body, sns.requests[0].body, 'the retry sends the same bytes')
  t.match(sns.requests[1].headers['amz-sdk-request'], /attempt=2; max=3/)
  for (let i = 0; i < 3; i++) t.same(await sender.send(i === 1 ? [note, note] : [note], aborter.signal), i === 1 ? [{ status: 'published' }, { status: 'published' }] : [{ status: 'published' }])
  const keys = sns.requests.map(r => /Credential=([^/]+)\//.exec(String(r.headers.authorization))![1])
  t.ok(new Set(keys).size >= 4, `a new key for each call, not the first one kept (${keys.join(', ')})`)
  for (const request of sns.requests) {
    t.equal(request.headers['x-amz-content-sha256'], createHash('sha256').update(request.body).digest('hex'), 'the payload hash is of the bytes sent')
    t.equal(request.headers['x-amz-security-token'], `token${/AKID(\d+)/.exec(String(request.headers.authorization))![1]}`, 'the session token of the same credentials')
    t.ok(await signatureMatches(request, id => `secret${id.slice(4)}`), 'the signature covers the body as received, with that key')
  }
})

t.test('the signer is built once per client; a failure to build it is not kept', async t => {
  const client = sdkClient('http://127.0.0.1:9')
  t.teardown(() => client.destroy())
  const built: unknown[] = []
  const sdkSigner = client.config.signer
  let fail = true
  client.config.signer = async authScheme => {
    built.push(authScheme)
    if (fail) {
      fail = false
      throw new Error('no region yet')
    }
    return sdkSigner(authScheme)
  }
  leanStack(client)
  await t.rejects(client.config.signer(), /no region yet/)
  const first = await client.config.signer()
  t.equal(await client.config.signer(), first, 'the same signer again')
  t.equal(built.length, 2, 'built after the failure, then kept')
})

t.test('the user agent\'s sections are built once and a configured endpoint parsed once; the requests are the SDK\'s', async t => {
  const published = `<PublishResponse ${NS}><PublishResult><MessageId>m</MessageId></PublishResult></PublishResponse>`
  const sns = await loopback(t, (_req, res) => xml(res, 200, published))
  const sdk = sdkClient(`${sns.url}/sns`, { protocol: SnsQueryProtocol })
  const client = sdkClient(`${sns.url}/sns`, { protocol: SnsQueryProtocol })
  t.teardown(() => { sdk.destroy(); client.destroy() })
  // Count the SDK's own providers' work, and fail each once: a failure is not kept.
  let sectionsBuilt = 0
  const sections = client.config.defaultUserAgentProvider
  client.config.defaultUserAgentProvider = async () => {
    if (sectionsBuilt++ === 0) throw new Error('no user agent yet')
    return sections()
  }
  let endpointsParsed = 0
  const endpoint = client.config.endpoint!
  client.config.endpoint = async () => {
    if (endpointsParsed++ === 0) throw new Error('no endpoint yet')
    return endpoint()
  }
  leanStack(client)
  const handler = new PublishCommand({ TopicArn: TOPIC, Message: 'x' }).resolveMiddleware(client.middlewareStack as never, handlerConfig(client), {})
  const call = () => handler(new PublishCommand({ TopicArn: TOPIC, Message: 'x' }) as never)
  await t.rejects(call(), /no endpoint yet/)
  await t.rejects(call(), /no user agent yet/)
  for (let i = 0; i < 3; i++) t.match(await call(), { output: { MessageId: 'm' } })
  t.equal(endpointsParsed, 2, 'the endpoint: parsed again after the failure, then kept')
  t.equal(sectionsBuilt, 2, 'the user agent\'s sections: built again after the failure, then kept')
  await sdk.send(new PublishCommand({ TopicArn: TOPIC, Message: 'x' }))
  const [expected, ...lean] = [sns.requests.at(-1)!, ...sns.requests.slice(0, -1)]
  t.equal(lean.length, 3)
  t.match(expected.url, /^\/sns/, 'the configured path')
  t.match(expected.headers['user-agent'], /aws-sdk-js\/[\d.]+ .*os\/.*md\/nodejs#20/, 'the SDK\'s user agent names the SDK, the system and Node')
  for (const request of lean) {
    t.equal(request.url, expected.url, 'the path the SDK\'s client sends')
    t.equal(request.headers.host, expected.headers.host)
    t.equal(request.headers['user-agent'], expected.headers['user-agent'], 'the user agent the SDK\'s client sends')
    t.equal(request.headers['x-amz-user-agent'], expected.headers['x-amz-user-agent'])
  }
  // Each call gets its own copy of the endpoint: a change to one does not reach the next.
  const config = handlerConfig(client)
  const first = await config.endpoint!()
  ;(first as { hostname: string }).hostname = 'elsewhere'
  t.equal((await config.endpoint!()).hostname, '127.0.0.1')
})
