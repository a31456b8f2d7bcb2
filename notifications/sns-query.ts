import { AwsQueryProtocol } from '@aws-sdk/core/protocols'
import type { MessageAttributeValue, PublishBatchInput } from '@aws-sdk/client-sns'

/**
 * The SDK's AWS Query protocol for SNS, with `Publish` and `PublishBatch` bodies built in one pass.
 *
 * The SDK's serializer walks the operation's schema per value, URL-encodes each with a regular
 * expression test, `encodeURIComponent` and a `replace`, appends to one string, and leaves a string
 * body that the signer (SHA-256) and the socket each convert to UTF-8 again: ~9 µs per KB of message
 * and a good share of a call's CPU. Here each value is encoded once (the same `encodeURIComponent`,
 * plus the same escapes for `!'()*`, so the same bytes and the same URIError on a lone surrogate), and
 * the pieces are copied once into a Buffer that the signer hashes and the socket writes as they are.
 *
 * Everything else is the SDK's: `Action` and `Version`, the endpoint, headers and the HTTP request
 * come from its own serializeRequest (called without the members); the answer, errors, signing and
 * retries are untouched. An input with something this builder does not write (a binary attribute
 * value, a member it does not know) goes to the SDK's serializer whole. test/unit/sns-query.test.ts proves
 * the bytes equal the SDK's over random inputs.
 *
 * One difference, on purpose: after a value it cannot encode (a lone surrogate), the SDK's serializer
 * (@aws-sdk/core 3.981) leaves the text it had written in its buffer, and the client's next call of any
 * operation sends it in front of its own body. Here a call that fails leaves nothing behind.
 */

// Members in the SDK's schema order (PublishInput$, PublishBatchRequestEntry$): the order it writes them.
const PUBLISH_MEMBERS = ['Message', 'TopicArn', 'TargetArn', 'PhoneNumber', 'Subject', 'MessageStructure', 'MessageAttributes', 'MessageDeduplicationId', 'MessageGroupId'] as const
const ENTRY_MEMBERS = ['Id', 'Message', 'Subject', 'MessageStructure', 'MessageAttributes', 'MessageDeduplicationId', 'MessageGroupId'] as const
const KNOWN_PUBLISH = new Set<string>(PUBLISH_MEMBERS)
const KNOWN_ENTRY = new Set<string>(ENTRY_MEMBERS)
const KNOWN_BATCH = new Set(['TopicArn', 'PublishBatchRequestEntries'])
const KNOWN_ATTRIBUTE = new Set(['DataType', 'StringValue', 'BinaryValue'])

const RESERVED = /[!'()*]/g
const escapeReserved = (c: string) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`

/** The SDK's extendedEncodeURIComponent, with `indexOf` instead of a regular expression for the rare case. */
export function encodeQueryValue (value: string): string {
  const encoded = encodeURIComponent(value)
  // Only these five survive encodeURIComponent and need escaping; a scan for each is cheaper than a regex test.
  return encoded.includes('!') || encoded.includes("'") || encoded.includes('(') || encoded.includes(')') || encoded.includes('*')
    ? encoded.replace(RESERVED, escapeReserved)
    : encoded
}

/** Pieces of ASCII text, copied once into a Buffer at the end. */
class FormBuilder {
  readonly parts: string[] = []
  length = 0

  constructor (head: string) { this.push(head) }

  push (text: string): void {
    this.parts.push(text)
    this.length += text.length
  }

  /** `&key=value`: key is ASCII without reserved characters (this file's constants and numbers). */
  field (key: string, value: unknown): void {
    this.push(`&${key}=`)
    this.push(encodeQueryValue(String(value)))
  }

  toBuffer (): Buffer {
    const out = Buffer.allocUnsafe(this.length)
    let at = 0
    for (const part of this.parts) at += out.write(part, at, 'latin1')
    return out
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object'

/** Whether every member present is one this builder writes (false: leave the input to the SDK). */
function onlyKnown (value: Record<string, unknown>, known: ReadonlySet<string>): boolean {
  for (const key in value) if (value[key] != null && !known.has(key)) return false
  return true
}

function writeAttributes (form: FormBuilder, prefix: string, attributes: unknown): boolean {
  if (!isObject(attributes)) return true
  let i = 1
  for (const name in attributes) {
    const value = attributes[name] as MessageAttributeValue | null | undefined
    if (value == null) continue
    if (isObject(value)) {
      if (value.BinaryValue != null || !onlyKnown(value as Record<string, unknown>, KNOWN_ATTRIBUTE)) return false
    }
    form.field(`${prefix}MessageAttributes.entry.${i}.Name`, name)
    if (isObject(value)) {
      if (value.DataType != null) form.field(`${prefix}MessageAttributes.entry.${i}.Value.DataType`, value.DataType)
      if (value.StringValue != null) form.field(`${prefix}MessageAttributes.entry.${i}.Value.StringValue`, value.StringValue)
    }
    i++
  }
  return true
}

function writeStruct (form: FormBuilder, prefix: string, value: Record<string, unknown>, members: readonly string[], known: ReadonlySet<string>): boolean {
  if (!onlyKnown(value, known)) return false
  for (const member of members) {
    const v = value[member]
    if (v == null) continue
    if (member === 'MessageAttributes') {
      if (!writeAttributes(form, prefix, v)) return false
    } else {
      form.field(`${prefix}${member}`, v)
    }
  }
  return true
}

/**
 * The form body the SDK would send for `Publish` or `PublishBatch` after `head` (`Action=…&Version=…`),
 * or undefined when the input has something only the SDK's serializer writes.
 */
export function publishBody (action: 'Publish' | 'PublishBatch', input: object, head: string): Buffer | undefined {
  const form = new FormBuilder(head)
  const value = input as Record<string, unknown>
  if (action === 'Publish') return writeStruct(form, '', value, PUBLISH_MEMBERS, KNOWN_PUBLISH) ? form.toBuffer() : undefined
  if (!onlyKnown(value, KNOWN_BATCH)) return undefined
  const batch = value as Partial<PublishBatchInput>
  if (batch.TopicArn != null) form.field('TopicArn', batch.TopicArn)
  const entries = batch.PublishBatchRequestEntries
  if (Array.isArray(entries)) {
    // The SDK writes an empty list as an empty value (serializeEmptyLists).
    if (entries.length === 0) form.push('&PublishBatchRequestEntries=')
    let i = 1
    for (const entry of entries as unknown[]) {
      if (entry == null) continue
      if (isObject(entry) && !writeStruct(form, `PublishBatchRequestEntries.member.${i}.`, entry, ENTRY_MEMBERS, KNOWN_ENTRY)) return undefined
      i++
    }
  } else if (entries != null) {
    return undefined
  }
  return form.toBuffer()
}

type SerializeArgs = Parameters<AwsQueryProtocol['serializeRequest']>

/**
 * The client's protocol (`new SNSClient({ protocol: SnsQueryProtocol })`): the SDK's AwsQueryProtocol,
 * whose serializeRequest builds Publish and PublishBatch bodies with publishBody.
 */
export class SnsQueryProtocol extends AwsQueryProtocol {
  override async serializeRequest<Input extends object> (operationSchema: SerializeArgs[0], input: Input, context: SerializeArgs[2]) {
    const name = operationSchema.name
    const action = name.slice(name.indexOf('#') + 1)
    if (action === 'Publish' || action === 'PublishBatch') {
      // The SDK's request without members: endpoint, path, headers and `Action=…&Version=…`.
      const request = await super.serializeRequest(operationSchema, {}, context)
      const body = publishBody(action, input, request.body as string)
      if (body !== undefined) {
        request.body = body
        return request
      }
    }
    try {
      return await super.serializeRequest(operationSchema, input, context)
    } catch (err) {
      // The SDK's serializer keeps what it wrote before an error (a lone surrogate: URIError) and puts
      // it in front of the next call's body; drop it.
      try { this.serializer.flush() } catch {}
      throw err
    }
  }
}
