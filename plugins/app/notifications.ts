import fp from 'fastify-plugin'
import { isAbsolute, join } from 'node:path'
import { SNSClient } from '@aws-sdk/client-sns'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { Agent as HttpsAgent } from 'node:https'
import { Agent as HttpAgent } from 'node:http'
import type { PandasSplitFrame, Prediction } from '../../schemas/predictions.js'
import type { NotificationStats } from '../../schemas/notifications.js'
import { endpointUrl } from '../../classifier/sagemaker.js'
import { projectRoot } from '../../project.js'
import { createJournal } from '../../notifications/journal.js'
import { notificationsFor, notificationsFromMessages, type PrebuiltMessages } from '../../notifications/message.js'
import { createSnsPublisher } from '../../notifications/sns-publisher.js'
import { createNotificationStream, eventData } from '../../notifications/stream.js'

declare module 'fastify' {
  interface FastifyInstance {
    notifications: ReturnType<typeof createNotifier>
  }
  interface FastifyRequest {
    /**
     * Set by the predictions route; the onResponse hook notifies from it: from the frame, or from the
     * bodies a worker thread built when the frame was parsed there.
     */
    classified: { frame?: PandasSplitFrame, messages?: PrebuiltMessages, predictions: Prediction[], seconds: number } | null
  }
}

type Config = import('../../schemas/config.js').Config

function createNotifier (config: Config, log: import('fastify').FastifyBaseLogger) {
  const dataDir = isAbsolute(config.NOTIFY_DATA_DIR) ? config.NOTIFY_DATA_DIR : join(projectRoot(), config.NOTIFY_DATA_DIR)
  const stream = createNotificationStream({ maxBufferBytes: config.SSE_MAX_BUFFER_BYTES })
  const logFile = config.NOTIFY_LOG_FILE !== undefined ? createJournal(config.NOTIFY_LOG_FILE) : undefined
  const sns = config.AWS_SNS_PREDICTIONS_TOPIC === undefined
    ? undefined
    : createSnsPublisher({
      client: new SNSClient({
        region: config.AWS_REGION ?? config.AWS_SNS_PREDICTIONS_TOPIC.split(':')[3],
        endpoint: endpointUrl(config.AWS_SNS_HOST),
        credentials: config.AWS_ACCESS_KEY !== undefined && config.AWS_SECRET_KEY !== undefined
          ? { accessKeyId: config.AWS_ACCESS_KEY, secretAccessKey: config.AWS_SECRET_KEY }
          : undefined,
        // Retries are the publisher's own: it knows about batches, spill-over and shutdown.
        maxAttempts: 1,
        requestHandler: new NodeHttpHandler({
          connectionTimeout: 3000,
          requestTimeout: config.SNS_TIMEOUT_MS,
          throwOnRequestTimeout: true,
          httpAgent: new HttpAgent({ keepAlive: true, maxSockets: config.NOTIFY_CONCURRENCY }),
          httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: config.NOTIFY_CONCURRENCY }),
        }),
      }),
      topicArn: config.AWS_SNS_PREDICTIONS_TOPIC,
      dataDir,
      queueSize: config.NOTIFY_QUEUE_SIZE,
      concurrency: config.NOTIFY_CONCURRENCY,
      lingerMs: config.NOTIFY_LINGER_MS,
      maxAttempts: config.NOTIFY_MAX_ATTEMPTS,
      retryBaseMs: config.NOTIFY_RETRY_BASE_MS,
      retryMaxMs: config.NOTIFY_RETRY_MAX_MS,
      drainTimeoutMs: config.NOTIFY_DRAIN_TIMEOUT_MS,
      log,
    })
  const mode = config.NOTIFY

  return {
    stream,
    sns,
    /** Every output of a classified request: SNS, the log file and live subscribers, as NOTIFY allows. */
    notify (rows: { frame?: PandasSplitFrame, messages?: PrebuiltMessages }, predictions: Prediction[], context: { model: string, requestId: string }): void {
      if (mode === 'none' || predictions.length === 0) return
      // Build only what someone will receive: with only attack subscribers, no benign notification.
      const kind = sns !== undefined || logFile !== undefined || stream.wants('all') ? mode : stream.wants('attacks') ? 'attacks' : undefined
      if (kind === undefined) return
      const notifications = rows.messages !== undefined
        ? notificationsFromMessages(rows.messages, predictions, kind, context)
        : notificationsFor(rows.frame!, predictions, kind, context)
      sns?.publish(notifications)
      if (logFile !== undefined) for (const n of notifications) logFile.appendJson(eventData(n))
      stream.emit(notifications)
    },
    stats (): NotificationStats {
      return { mode, sns: sns?.stats() ?? null, stream: stream.stats() }
    },
    async close (): Promise<void> {
      stream.close()
      await sns?.close()
      await logFile?.close()
    },
  }
}

/**
 * Announces predictions after each response: the hook runs once the response is sent, and only
 * queues work, so publishing can neither delay nor fail it.
 */
export default fp(async function notifications (fastify) {
  const notifier = createNotifier(fastify.config, fastify.log)
  fastify.decorate('notifications', notifier)
  fastify.decorateRequest('classified', null)
  fastify.addHook('onResponse', async (request, reply) => {
    if (request.classified === null || reply.statusCode !== 200) return
    const { predictions } = request.classified
    notifier.notify(request.classified, predictions, { model: fastify.classifier.describe().name, requestId: request.id })
  })
  // What an earlier run spilled goes out first.
  fastify.addHook('onReady', async () => { notifier.sns?.start() })
  // Event streams never end by themselves: end them before the server waits for open connections.
  fastify.addHook('preClose', async () => notifier.stream.close())
  fastify.addHook('onClose', async () => await notifier.close())
  if (notifier.sns !== undefined) fastify.log.info({ mode: fastify.config.NOTIFY }, 'publishing predictions to SNS')
}, { name: 'notifications', dependencies: ['env', 'classifier'] })
