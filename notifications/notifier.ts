import { isAbsolute, join } from 'node:path'
import { SNSClient } from '@aws-sdk/client-sns'
import type { FastifyBaseLogger } from 'fastify'
import { awsClientConfig } from '../aws-clients.js'
import { projectRoot } from '../project.js'
import type { Config } from '../schemas/config.js'
import type { NotificationStats } from '../schemas/notifications.js'
import type { PandasSplitFrame, Prediction } from '../schemas/predictions.js'
import { createJsonLinesFile } from './jsonl-file.js'
import { notificationsFor } from './message.js'
import { createSnsPublisher } from './sns-publisher.js'
import { createNotificationStream, eventData } from './stream.js'

/** The SNS client as the publisher uses it: the shared AWS wiring, no SDK retries (the publisher has its own). */
export function createSnsClient (config: Config & { AWS_SNS_PREDICTIONS_TOPIC: string }) {
  return new SNSClient({
    ...awsClientConfig(config, {
      region: config.AWS_REGION ?? config.AWS_SNS_PREDICTIONS_TOPIC.split(':')[3],
      host: config.AWS_SNS_HOST,
      maxSockets: config.NOTIFY_CONCURRENCY,
      connectTimeoutMs: 3000,
      requestTimeoutMs: config.SNS_TIMEOUT_MS,
    }),
    // Retries are the publisher's own: it knows about batches, the journal and shutdown.
    maxAttempts: 1,
  })
}

/**
 * Every output of a classified request: SNS (through the journal), the NOTIFY_LOG_FILE and live
 * subscribers, as NOTIFY and NOTIFY_GROUPING say.
 */
export function createNotifier (config: Config, log: FastifyBaseLogger) {
  const dataDir = isAbsolute(config.NOTIFY_DATA_DIR) ? config.NOTIFY_DATA_DIR : join(projectRoot(), config.NOTIFY_DATA_DIR)
  const stream = createNotificationStream({ maxBufferBytes: config.SSE_MAX_BUFFER_BYTES })
  const logFile = config.NOTIFY_LOG_FILE !== undefined
    ? createJsonLinesFile(config.NOTIFY_LOG_FILE, err => log.error({ err }, 'writing NOTIFY_LOG_FILE failed'))
    : undefined
  const topic = config.AWS_SNS_PREDICTIONS_TOPIC
  const sns = topic === undefined
    ? undefined
    : createSnsPublisher({
      client: createSnsClient({ ...config, AWS_SNS_PREDICTIONS_TOPIC: topic }),
      topicArn: topic,
      dataDir,
      journal: config.NOTIFY_JOURNAL,
      spillMaxBytes: config.NOTIFY_SPILL_MAX_BYTES,
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
  const grouping = config.NOTIFY_GROUPING

  return {
    stream,
    sns,
    /** Synchronous: with SNS, the notifications are in the journal when it returns. */
    notify (frame: PandasSplitFrame, predictions: readonly Prediction[], context: { model: string, requestId: string }): void {
      if (mode === 'none' || predictions.length === 0) return
      // Build only what someone will receive: with only attack subscribers, no benign notification.
      const listening = stream.widestSubscription()
      const kind = sns !== undefined || logFile !== undefined || listening === 'all' ? mode : listening
      if (kind === undefined) return
      const notifications = notificationsFor(frame, predictions, kind, context, grouping)
      sns?.publish(notifications)
      if (logFile !== undefined) for (const n of notifications) logFile.appendJson(eventData(n))
      stream.emit(notifications)
    },
    /** Not ready while a notification can be neither published nor written to disk. */
    readiness () {
      return sns?.readiness() ?? { ready: true as const }
    },
    stats (): NotificationStats {
      return { mode, grouping, journal: config.NOTIFY_JOURNAL, sns: sns?.stats() ?? null, stream: stream.stats() }
    },
    async close (): Promise<void> {
      stream.close()
      await sns?.close()
      await logFile?.close()
    },
  }
}

export type Notifier = ReturnType<typeof createNotifier>
