import type { FastifyBaseLogger } from 'fastify'
import { projectPath } from '../project.js'
import type { Config } from '../schemas/config.js'
import type { ServerResponse } from 'node:http'
import type { NotificationStats, StreamInclude } from '../schemas/notifications.js'
import type { PandasSplitFrame, Prediction } from '../schemas/predictions.js'
import { checkAppendable, createJsonLinesFile } from './jsonl-file.js'
import { notificationsFor, type Notification, type NotifyMode } from './message.js'
import { createSnsPublisher } from './sns-publisher.js'
import { createThreadSender } from './sender-thread.js'
import { createNotificationStream, eventData } from './stream.js'

/**
 * Every output of a classified request: SNS (through the journal), the NOTIFY_LOG_FILE and live
 * subscribers, as NOTIFY and NOTIFY_GROUPING say. The AWS SDK is loaded only where the SNS calls
 * run: in the sender thread, or here with NOTIFY_SENDER=inline; never without a topic.
 */
export async function createNotifier (config: Config, log: FastifyBaseLogger) {
  const dataDir = projectPath(config.NOTIFY_DATA_DIR)
  const stream = createNotificationStream({ maxBufferBytes: config.SSE_MAX_BUFFER_BYTES })
  const logPath = projectPath(config.NOTIFY_LOG_FILE)
  if (logPath !== undefined) checkAppendable(logPath, 'NOTIFY_LOG_FILE')
  const logFile = logPath !== undefined
    // A rotation that moves the file away (logrotate's default) is followed within a second.
    ? createJsonLinesFile(logPath, err => log.error({ err }, 'writing NOTIFY_LOG_FILE failed: its lines are not written until it opens again'), { reopenWhenMovedMs: 1000 })
    : undefined
  const topic = config.AWS_SNS_PREDICTIONS_TOPIC
  const sns = topic === undefined
    ? undefined
    : createSnsPublisher({
      // SNS calls in a thread of their own (NOTIFY_SENDER=thread) or on the event loop.
      sender: config.NOTIFY_SENDER === 'thread'
        ? createThreadSender({ ...config, AWS_SNS_PREDICTIONS_TOPIC: topic })
        : await import('./sender.js').then(({ createSender, createSnsClient }) => createSender(createSnsClient({ ...config, AWS_SNS_PREDICTIONS_TOPIC: topic }), topic)),
      dataDir,
      journal: config.NOTIFY_JOURNAL,
      spillMaxBytes: config.NOTIFY_SPILL_MAX_BYTES,
      deadLetterMaxBytes: config.NOTIFY_DEAD_LETTER_MAX_BYTES,
      queueSize: config.NOTIFY_QUEUE_SIZE,
      concurrency: config.NOTIFY_CONCURRENCY,
      lingerMs: config.NOTIFY_LINGER_MS,
      maxAttempts: config.NOTIFY_MAX_ATTEMPTS,
      retryBaseMs: config.NOTIFY_RETRY_BASE_MS,
      retryMaxMs: config.NOTIFY_RETRY_MAX_MS,
      // Ends in time for what is left to reach the disk before SHUTDOWN_TIMEOUT_MS ends the process
      // (without the journal, it is only written then).
      drainTimeoutMs: Math.min(config.NOTIFY_DRAIN_TIMEOUT_MS, Math.floor(config.SHUTDOWN_TIMEOUT_MS * 0.8)),
      log,
    })
  const mode = config.NOTIFY
  const grouping = config.NOTIFY_GROUPING

  function kind (): NotifyMode {
    if (mode === 'none') return 'none'
    // Build only what someone will receive: with only attack subscribers, no benign notification.
    const listening = stream.widestSubscription()
    return sns !== undefined || logFile !== undefined || listening === 'all' ? mode : listening ?? 'none'
  }

  /**
   * Notifications built elsewhere (by a worker thread, with notificationsFor and `kind()`), sent as
   * `notify` sends its own: the journal (synchronously), then SNS, the log file, live subscribers.
   */
  function deliver (notifications: readonly Notification[]): void {
    sns?.publish(notifications)
    if (logFile !== undefined) for (const n of notifications) logFile.appendJson(eventData(n))
    stream.emit(notifications)
  }

  // A narrow interface: routes and plugins call these, never reach into the stream or the publisher.
  return {
    /** Whether notifications go to SNS (AWS_SNS_PREDICTIONS_TOPIC is set). */
    publishing: sns !== undefined,
    /** Replays what an earlier run left on disk (the app's onReady). */
    start: async (): Promise<void> => { await sns?.start() },
    /** A Server-Sent Events subscriber on `response`; returns its unsubscribe. */
    subscribe: (response: ServerResponse, include: StreamInclude) => stream.subscribe(response, include),
    /** Ends every event stream (before the server waits for open connections to close). */
    endStreams: () => stream.close(),
    /**
     * Which rows' notifications someone will receive now: NOTIFY's, or only attacks when the only
     * receivers are attack subscribers, or none. Decided before building anything (a worker thread
     * builds them with this answer, see `deliver`).
     */
    kind,
    grouping,
    /** Synchronous: with SNS, the notifications are in the journal when it returns. */
    notify (frame: PandasSplitFrame, predictions: readonly Prediction[], context: { model: string, requestId: string }, unfamiliar?: ArrayLike<number>): void {
      if (predictions.length === 0) return
      const k = kind()
      if (k === 'none') return
      deliver(notificationsFor(frame, predictions, k, context, grouping, k === 'attacks' ? undefined : unfamiliar))
    },
    deliver,
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

export type Notifier = Awaited<ReturnType<typeof createNotifier>>
