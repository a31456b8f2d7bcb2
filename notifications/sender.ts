import { PublishBatchCommand, PublishCommand, SNSClient, type MessageAttributeValue, type PublishBatchCommandOutput, type PublishCommandOutput } from '@aws-sdk/client-sns'
import { awsClientConfig } from '../aws-clients.js'
import type { Config } from '../schemas/config.js'
import type { Notification } from './message.js'
import { SnsQueryProtocol } from './sns-query.js'
import { handlerConfig, leanStack } from './sns-stack.js'

// Errors about one message: publishing it again cannot succeed.
const PERMANENT_MESSAGE_ERRORS = new Set(['InvalidParameter', 'InvalidParameterValue', 'ValidationError', 'InvalidMessageContents'])
// Errors about a batch as a whole, that its entries sent one by one avoid.
const SPLITTABLE_BATCH_ERRORS = new Set(['BatchRequestTooLong', 'TooManyEntriesInBatchRequest', 'BatchEntryIdsNotDistinct', 'EmptyBatchRequest', 'InvalidBatchEntryId'])

/** What SNS did with one notification of a call. */
export type Outcome =
  | { readonly status: 'published' }
  /** Refused for good: sending it again cannot succeed. */
  | { readonly status: 'refused', readonly reason: string }
  /** Not taken this time: worth another attempt. */
  | { readonly status: 'failed', readonly reason: string }

/** An entry the answer did not confirm. */
const UNCONFIRMED: Outcome = { status: 'failed', reason: 'NotConfirmed: the answer did not confirm this entry' }

/** A call that failed as a whole. */
export interface CallFailure {
  readonly code: string
  readonly message: string
  /** The batch was refused as a batch: its entries sent one by one may pass. */
  readonly splittable: boolean
}

function errorCode (err: unknown): string {
  const e = err as { name?: string, Code?: string, code?: string }
  // SNS's errors are named by their code; a socket's are plain Errors with a code (ECONNREFUSED).
  return e.Code ?? (e.name !== undefined && e.name !== 'Error' ? e.name : undefined) ?? e.code ?? 'Error'
}

/** A notification's attributes as SNS message attributes (`rows` a Number, the rest Strings). */
export const attributesOf = (n: Notification): Record<string, MessageAttributeValue> => {
  const out: Record<string, MessageAttributeValue> = {}
  for (const [name, value] of Object.entries(n.attributes)) out[name] = { DataType: name === 'rows' ? 'Number' : 'String', StringValue: value as string }
  return out
}

/**
 * The SNS client as the publisher uses it: the shared AWS wiring, no SDK retries (the publisher has its
 * own), and Publish/PublishBatch bodies built by sns-query.ts (`sdkSerializer: true`: the SDK's own, for
 * the benchmark's comparison).
 */
export function createSnsClient (config: Config & { AWS_SNS_PREDICTIONS_TOPIC: string }, opts: { sdkSerializer?: boolean } = {}) {
  const client = new SNSClient({
    ...(opts.sdkSerializer === true ? {} : { protocol: SnsQueryProtocol }),
    ...awsClientConfig(config, {
      region: config.AWS_REGION ?? config.AWS_SNS_PREDICTIONS_TOPIC.split(':')[3],
      host: config.AWS_SNS_HOST,
      maxSockets: config.NOTIFY_CONCURRENCY,
      connectTimeoutMs: 3000,
      requestTimeoutMs: config.SNS_TIMEOUT_MS,
      // SNS answers a batch of ten in well under a kilobyte per entry.
      maxAnswerBytes: 1024 * 1024,
      service: 'SNS',
    }),
    // Retries are the publisher's own: it knows about batches, the journal and shutdown.
    maxAttempts: 1,
  })
  return opts.sdkSerializer === true ? client : leanStack(client)
}

/**
 * One SNS call for up to 10 notifications: `Publish` for one, `PublishBatch` for more. Answers one
 * outcome per notification, in order, or a CallFailure when the call failed as a whole. Knows the
 * wire and SNS's error codes; nothing about queues, retries or files.
 */
export function createSender (client: SNSClient, topicArn: string): Sender {
  // What client.send(command, { abortSignal }) does, less rebuilding the middleware stack on every call:
  // the handler is resolved once per operation and signal (the publisher has one signal) and reused, as
  // the SDK's own `cacheMiddleware` option does for calls without options. The stack, the client's
  // config and so signing, endpoint and errors are the same.
  const configuration = handlerConfig(client)
  let publishHandler: { signal: AbortSignal, run: (c: PublishCommand) => Promise<PublishCommandOutput> } | undefined
  let batchHandler: { signal: AbortSignal, run: (c: PublishBatchCommand) => Promise<PublishBatchCommandOutput> } | undefined
  const publish = (command: PublishCommand, signal: AbortSignal) => {
    if (publishHandler?.signal !== signal) {
      const handler = command.resolveMiddleware(client.middlewareStack, configuration, { abortSignal: signal })
      publishHandler = { signal, run: c => handler(c).then(r => r.output) }
    }
    return publishHandler.run(command)
  }
  const publishBatch = (command: PublishBatchCommand, signal: AbortSignal) => {
    if (batchHandler?.signal !== signal) {
      const handler = command.resolveMiddleware(client.middlewareStack, configuration, { abortSignal: signal })
      batchHandler = { signal, run: c => handler(c).then(r => r.output) }
    }
    return batchHandler.run(command)
  }
  return {
    async send (batch: readonly Notification[], signal: AbortSignal): Promise<Outcome[] | CallFailure> {
      try {
        // Only what the answer confirms counts as published: a MessageId for Publish, the entry's id
        // under Successful for PublishBatch. An empty or unparsable answer, or an entry in neither
        // list, is a failure to retry (at least once: a duplicate is possible, a loss is not).
        if (batch.length === 1) {
          const answer = await publish(new PublishCommand({ TopicArn: topicArn, Message: batch[0].message, MessageAttributes: attributesOf(batch[0]) }), signal)
          return [typeof answer.MessageId === 'string' && answer.MessageId !== '' ? { status: 'published' } : UNCONFIRMED]
        }
        const answer = await publishBatch(new PublishBatchCommand({
          TopicArn: topicArn,
          PublishBatchRequestEntries: batch.map((n, i) => ({ Id: String(i), Message: n.message, MessageAttributes: attributesOf(n) })),
        }), signal)
        const outcomes: Outcome[] = batch.map(() => UNCONFIRMED)
        const entry = (id: string | undefined) => /^\d+$/.test(id ?? '') && Number(id) < batch.length ? Number(id) : -1
        for (const f of answer.Failed ?? []) {
          const i = entry(f.Id)
          if (i === -1) continue
          const reason = `${f.Code ?? 'Error'}: ${f.Message ?? ''}`
          outcomes[i] = f.SenderFault === true && PERMANENT_MESSAGE_ERRORS.has(f.Code ?? '') ? { status: 'refused', reason } : { status: 'failed', reason }
        }
        // Listed as successful only with a MessageId, and not also listed as failed.
        for (const ok of answer.Successful ?? []) {
          const i = entry(ok.Id)
          if (i !== -1 && outcomes[i] === UNCONFIRMED && typeof ok.MessageId === 'string' && ok.MessageId !== '') outcomes[i] = { status: 'published' }
        }
        return outcomes
      } catch (err) {
        const code = errorCode(err)
        const message = (err as Error).message
        if (batch.length === 1 && PERMANENT_MESSAGE_ERRORS.has(code)) return [{ status: 'refused', reason: `${code}: ${message}` }]
        return { code, message, splittable: batch.length > 1 && SPLITTABLE_BATCH_ERRORS.has(code) }
      }
    },
    async close () { client.destroy() },
  }
}

export interface Sender {
  send: (batch: readonly Notification[], signal: AbortSignal) => Promise<Outcome[] | CallFailure>
  /** Releases the client (sockets) or the thread the calls run in. */
  close: () => Promise<void>
}
