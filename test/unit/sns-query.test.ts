import t from 'tap'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { PublishBatchCommand, PublishCommand, SNSClient, type PublishBatchInput, type PublishInput } from '@aws-sdk/client-sns'
import type { Notification } from '../../notifications/message.js'
import { createSender, createSnsClient } from '../../notifications/sender.js'
import { SnsQueryProtocol, encodeQueryValue, publishBody } from '../../notifications/sns-query.js'
import { signatureMatches } from '../support/sigv4.js'
import { snsServer } from '../support/sns.js'
import { senderConfig as config, TOPIC } from '../support/notifications.js'

class Captured extends Error {
  constructor (readonly body: Buffer) { super('captured') }
}

/** A client whose calls stop after serialisation, answering the body it would have sent. */
function capturing (sdkSerializer: boolean) {
  const client = createSnsClient(config('http://127.0.0.1:9'), { sdkSerializer })
  client.middlewareStack.add(() => async args => {
    const body = (args.request as { body: string | Uint8Array }).body
    throw new Captured(typeof body === 'string' ? Buffer.from(body) : Buffer.from(body))
  }, { step: 'build', name: 'captureBody' })
  return client
}
let sdk = capturing(true)
const lean = capturing(false)
t.teardown(() => { sdk.destroy(); lean.destroy() })

/** The SDK's serializer's body for a command; a fresh client after an error (see the last test of this group). */
async function sdkBodyOf (command: PublishCommand | PublishBatchCommand) {
  const result = await bodyOf(sdk, command)
  if ('error' in result) {
    sdk.destroy()
    sdk = capturing(true)
  }
  return result
}

/** The bytes a client sends for a command, or the error serialisation threw. */
async function bodyOf (client: SNSClient, command: PublishCommand | PublishBatchCommand): Promise<{ body: string } | { error: string }> {
  try {
    await client.send(command as PublishCommand)
    throw new Error('the capture middleware did not run')
  } catch (err) {
    if (err instanceof Captured) return { body: err.body.toString('latin1') }
    return { error: `${(err as Error).name}: ${(err as Error).message}` }
  }
}

// Text of every kind: any UTF-16 code unit (lone surrogates included), whole code points, JSON-ish text.
const text = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map(c => String.fromCharCode(c)), maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom(...'!\'()*~-._ %&=+/:,[]{}"\\09azAZé€\u2028'), maxLength: 60 }),
  fc.json({ maxDepth: 2 })
)
const attributeValue = fc.record({
  DataType: fc.constantFrom('String', 'Number', 'String.Array', 'Binary'),
  StringValue: text,
}, { requiredKeys: [] })
const attributes = fc.dictionary(text, fc.oneof({ weight: 8, arbitrary: attributeValue }, { weight: 1, arbitrary: fc.constant(undefined) }), { maxKeys: 5 })
const optional = { requiredKeys: [] as [] }
const publishInput = fc.record({
  Message: text,
  TopicArn: fc.oneof(fc.constant(TOPIC), text),
  Subject: text,
  MessageStructure: fc.constant('json'),
  MessageAttributes: attributes,
  MessageDeduplicationId: text,
  MessageGroupId: text,
}, { requiredKeys: ['Message'] })
const entry = fc.record({
  Id: text,
  Message: text,
  Subject: text,
  MessageAttributes: attributes,
  MessageGroupId: text,
}, { requiredKeys: ['Id', 'Message'] })
const batchInput = fc.record({
  TopicArn: fc.constant(TOPIC),
  PublishBatchRequestEntries: fc.array(entry, { maxLength: 10 }),
}, optional)

t.test('Publish: the same bytes as the SDK\'s serializer (or the same error), over random messages and attributes', async t => {
  await fc.assert(fc.asyncProperty(publishInput, async input => {
    const expected = await sdkBodyOf(new PublishCommand(input as PublishInput))
    const actual = await bodyOf(lean, new PublishCommand(input as PublishInput))
    return JSON.stringify(actual) === JSON.stringify(expected)
  }), { numRuns: 400 })
})

t.test('PublishBatch: the same bytes as the SDK\'s serializer (or the same error), over random entries', async t => {
  await fc.assert(fc.asyncProperty(batchInput, async input => {
    const expected = await sdkBodyOf(new PublishBatchCommand(input as PublishBatchInput))
    const actual = await bodyOf(lean, new PublishBatchCommand(input as PublishBatchInput))
    return JSON.stringify(actual) === JSON.stringify(expected)
  }), { numRuns: 300 })
})

t.test('what the builder does not write goes to the SDK\'s serializer whole, with the same bytes', async t => {
  const binary = { TopicArn: TOPIC, Message: 'm', MessageAttributes: { b: { DataType: 'Binary', BinaryValue: new Uint8Array([1, 2, 255]) } } }
  t.equal(publishBody('Publish', binary, 'Action=Publish&Version=2010-03-31'), undefined, 'a binary attribute is left to the SDK')
  t.same(await bodyOf(lean, new PublishCommand(binary)), await sdkBodyOf(new PublishCommand(binary)))
  const unknown = { TopicArn: TOPIC, Message: 'm', SomethingNew: 'x' }
  t.equal(publishBody('Publish', unknown, ''), undefined, 'a member it does not know is left to the SDK')
  const withNulls = { TopicArn: TOPIC, PublishBatchRequestEntries: [null, { Id: 'a', Message: 'b', MessageAttributes: { x: null, y: { DataType: 'String', StringValue: 'v' } } }] }
  t.same(await bodyOf(lean, new PublishBatchCommand(withNulls as unknown as PublishBatchInput)), await sdkBodyOf(new PublishBatchCommand(withNulls as unknown as PublishBatchInput)))
  t.same(await bodyOf(lean, new PublishBatchCommand({ TopicArn: TOPIC, PublishBatchRequestEntries: [] })), await sdkBodyOf(new PublishBatchCommand({ TopicArn: TOPIC, PublishBatchRequestEntries: [] })), 'an empty list')
  // Shapes a typed caller cannot send, written as the SDK writes them or left to it.
  const odd = [
    { TopicArn: TOPIC, Message: 'm', MessageAttributes: { a: 'not an object', b: { DataType: 'String', StringValue: 'v', Extra: 1 } } },
    { TopicArn: TOPIC, Message: 'm', MessageAttributes: 'not a map' },
  ]
  for (const input of odd) t.same(await bodyOf(lean, new PublishCommand(input as unknown as PublishInput)), await sdkBodyOf(new PublishCommand(input as unknown as PublishInput)))
  t.equal(publishBody('PublishBatch', { TopicArn: TOPIC, PublishBatchRequestEntries: 'x' }, ''), undefined, 'entries that are not a list')
  t.equal(publishBody('PublishBatch', { TopicArn: TOPIC, Other: 1 }, ''), undefined, 'a batch member it does not know')
  t.equal(publishBody('PublishBatch', { PublishBatchRequestEntries: [{ Id: '1', Message: 'm', New: 'x' }] }, ''), undefined, 'an entry member it does not know')
  const oddBatch = { TopicArn: TOPIC, PublishBatchRequestEntries: ['not an object', { Id: '1', Message: 'm' }] }
  t.same(await bodyOf(lean, new PublishBatchCommand(oddBatch as unknown as PublishBatchInput)), await sdkBodyOf(new PublishBatchCommand(oddBatch as unknown as PublishBatchInput)))
})

t.test('values are encoded as the SDK encodes them: RFC 3986 reserved characters escaped, UTF-8, a lone surrogate refused', async t => {
  t.equal(encodeQueryValue('a-b_c.d~e'), 'a-b_c.d~e')
  t.equal(encodeQueryValue("!'()* x"), '%21%27%28%29%2A%20x')
  t.equal(encodeQueryValue('é€😀'), '%C3%A9%E2%82%AC%F0%9F%98%80')
  t.throws(() => encodeQueryValue('\ud800x'), URIError)
  const lone = await bodyOf(lean, new PublishCommand({ TopicArn: TOPIC, Message: 'a\udc00' }))
  t.same(lone, await sdkBodyOf(new PublishCommand({ TopicArn: TOPIC, Message: 'a\udc00' })))
  t.match(lone, { error: /^URIError/ })
})

t.test('a call that fails to serialise leaves nothing in front of the next call\'s body (the SDK\'s serializer does)', async t => {
  const plain = () => new PublishCommand({ TopicArn: TOPIC, Message: 'ok' })
  const clean = 'Action=Publish&Version=2010-03-31&Message=ok&TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A123456789012%3Aml-ids-predictions'
  const sdkClient = capturing(true)
  t.teardown(() => sdkClient.destroy())
  t.match(await bodyOf(sdkClient, new PublishCommand({ TopicArn: TOPIC, Message: 'x\ud800' })), { error: /^URIError/ })
  t.not((await bodyOf(sdkClient, plain()) as { body: string }).body, clean, 'the SDK\'s serializer sends the failed call\'s text first')
  // The builder, and the SDK's serializer when it is left an input (a binary attribute value).
  const binary = { DataType: 'Binary', BinaryValue: new Uint8Array([1]) }
  // (The builder's own refusal; the SDK's, after the builder left it the input for its binary value.)
  for (const input of [{ TopicArn: TOPIC, Message: 'x\ud800' }, { TopicArn: TOPIC, Message: 'm', MessageAttributes: { b: binary }, MessageDeduplicationId: 'x\ud800' }]) {
    t.match(await bodyOf(lean, new PublishCommand(input)), { error: /^URIError/ })
    t.same(await bodyOf(lean, plain()), { body: clean })
  }
})

t.test('other operations keep the SDK\'s serializer', async t => {
  const client = new SNSClient({ region: 'eu-west-1', endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, protocol: SnsQueryProtocol, maxAttempts: 1 })
  t.teardown(() => client.destroy())
  client.middlewareStack.add(() => async args => { throw new Captured(Buffer.from((args.request as { body: string }).body)) }, { step: 'build' })
  const { ListTopicsCommand } = await import('@aws-sdk/client-sns')
  t.same(await bodyOf(client, new ListTopicsCommand({ NextToken: 'a b' }) as unknown as PublishCommand), { body: 'Action=ListTopics&Version=2010-03-31&NextToken=a%20b' })
})

t.test('through the real client to a loopback SNS: signed over the bytes sent, and the SDK retries a failed call with the same bytes', async t => {
  const sns = await snsServer(t, { call: ({ number }) => number === 1 ? { status: 500, code: 'InternalError' } : undefined })
  const client = new SNSClient({ region: 'eu-west-1', endpoint: sns.url, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }, protocol: SnsQueryProtocol, maxAttempts: 3 })
  t.teardown(() => client.destroy())
  const message = '{"columns":["a","b"],"data":[["é ! (x)",1.5]]}'
  const answer = await client.send(new PublishBatchCommand({
    TopicArn: TOPIC,
    PublishBatchRequestEntries: [{ Id: '0', Message: message, MessageAttributes: { prediction: { DataType: 'String', StringValue: 'attack' } } }, { Id: '1', Message: 'two' }],
  }))
  t.same(answer.Successful?.map(s => s.Id), ['0', '1'])
  t.equal(sns.requests.length, 2, 'the first attempt failed with a 500 and the SDK tried again')
  t.equal(sns.requests[1].body, sns.requests[0].body, 'the retry sends the same bytes')
  t.match(sns.requests[1].headers['amz-sdk-request'], /attempt=2/)
  t.same(sns.accepted.map(m => [m.message, m.attributes.prediction?.value]), [[message, 'attack'], ['two', undefined]])
  for (const request of sns.requests) {
    t.equal(request.headers['content-length'], String(Buffer.byteLength(request.body)))
    t.equal(request.headers['x-amz-content-sha256'], createHash('sha256').update(request.body).digest('hex'), 'the payload hash is of the bytes sent')
    t.ok(await signatureMatches(request, id => id === 'AKIDEXAMPLE' ? 'secret' : undefined), 'the signature covers the body as received')
  }
})

t.test('errors come back as the SDK\'s typed exceptions', async t => {
  const sns = await snsServer(t, { call: () => ({ status: 400, code: 'InvalidParameter' }) })
  const sender = createSender(createSnsClient(config(sns.url)), TOPIC)
  t.teardown(() => sender.close())
  const aborter = new AbortController()
  setMaxListeners(0, aborter.signal)
  const note: Notification = { message: '{}', attributes: { prediction: 'attack', model: 'm', request_id: 'r' } }
  t.match(await sender.send([note], aborter.signal), [{ status: 'refused', reason: /^InvalidParameter: InvalidParameter happened/ }])
  t.match(await sender.send([note, note], aborter.signal), { code: 'InvalidParameter', splittable: false })
  // The handler resolved once per signal: a new signal (a restarted sender thread's) gets its own.
  const other = new AbortController()
  other.abort()
  t.match(await sender.send([note], other.signal), { code: 'AbortError' })
})
