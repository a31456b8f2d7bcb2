import fp from 'fastify-plugin'
import { ConfigError, NotificationsBackloggedError } from '../../errors.js'
import { createNotifier, type Notifier } from '../../notifications/notifier.js'

declare module 'fastify' {
  interface FastifyInstance {
    notifications: Notifier
  }
}

/**
 * Announces predictions: a classified request's notifications are journaled (one synchronous append)
 * before its response is serialised and published in the background, so an answered row is never
 * lost, and publishing never delays a response by more than that append. While a notification can
 * be neither published nor written to disk, new predictions are refused with 503.
 */
export default fp(async function notifications (fastify) {
  const notifier = await createNotifier(fastify.config, fastify.log)
  const retryAfter = fastify.config.PRESSURE_RETRY_AFTER_S
  fastify.decorate('notifications', notifier)
  const model = fastify.classifier.describe().name
  // NOTIFY=unfamiliar: benign rows are scored for unfamiliarity once answered (a worker thread scores its own).
  const flagUnfamiliar = fastify.config.NOTIFY === 'unfamiliar' ? fastify.classifier.flagUnfamiliar?.bind(fastify.classifier) : undefined
  if (fastify.config.NOTIFY === 'unfamiliar' && flagUnfamiliar === undefined) {
    throw new ConfigError('NOTIFY=unfamiliar needs the embedded model with its unfamiliar-flow detector (novelty.json beside the model)')
  }
  // Every classified request is announced: its notifications are journaled before its response is sent.
  fastify.classifications.on('classified', classified => {
    // A worker thread that classified the body built its notifications too (see request.classifyPooled).
    if (classified.notifications !== undefined) notifier.deliver(classified.notifications)
    else notifier.notify(classified.frame, classified.predictions, { model, requestId: classified.requestId }, flagUnfamiliar?.(classified.frame, classified.predictions))
  })
  // Routes that classify refuse work they could not announce, before reading the body.
  fastify.classifications.guard(() => {
    const state = notifier.readiness()
    if (!state.ready) throw new NotificationsBackloggedError(`${state.reason}; retry in ${retryAfter} s`)
  })
  // What an earlier run left on disk goes out, alongside live traffic.
  fastify.addHook('onReady', async () => { notifier.start() })
  // Event streams never end by themselves: end them before the server waits for open connections.
  fastify.addHook('preClose', async () => notifier.endStreams())
  fastify.addHook('onClose', async () => await notifier.close())
  if (notifier.publishing) fastify.log.info({ mode: fastify.config.NOTIFY, grouping: fastify.config.NOTIFY_GROUPING, journal: fastify.config.NOTIFY_JOURNAL }, 'publishing predictions to SNS')
}, { name: 'notifications', dependencies: ['env', 'classifier', 'classifications'] })
