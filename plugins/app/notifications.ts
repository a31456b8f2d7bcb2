import fp from 'fastify-plugin'
import type { PandasSplitFrame, Prediction } from '../../schemas/predictions.js'
import type { ErrorResponse } from '../../schemas/common.js'
import type { Notification } from '../../notifications/message.js'
import { createNotifier, type Notifier } from '../../notifications/notifier.js'

declare module 'fastify' {
  interface FastifyInstance {
    notifications: Notifier
  }
  interface FastifyContextConfig {
    /** The route classifies flows and announces them: refused with 503 while notifications are backlogged. */
    announces?: boolean
  }
  interface FastifyRequest {
    /**
     * Set by the routes that classify; notified before the response is sent: from the frame, or, when
     * a worker thread classified the body, the notifications it built.
     */
    classified: { frame: PandasSplitFrame, predictions: Prediction[], seconds: number } |
    { notifications: readonly Notification[], predictions: Prediction[], seconds: number } | null
  }
}

/**
 * Announces predictions: a classified request's notifications are journaled (one synchronous append)
 * before its response is serialised and published in the background, so an answered row is never
 * lost, and publishing never delays a response by more than that append. While a notification can
 * be neither published nor written to disk, new predictions are refused with 503.
 */
export default fp(async function notifications (fastify) {
  const notifier = createNotifier(fastify.config, fastify.log)
  const retryAfter = fastify.config.PRESSURE_RETRY_AFTER_S
  fastify.decorate('notifications', notifier)
  fastify.decorateRequest('classified', null)
  fastify.addHook('preSerialization', async (request, reply, payload) => {
    // Routes in contexts made before this decorator (Swagger UI's) have no `classified` at all.
    if (request.classified == null || reply.statusCode !== 200) return payload
    const classified = request.classified
    if ('notifications' in classified) notifier.deliver(classified.notifications)
    else notifier.notify(classified.frame, classified.predictions, { model: fastify.classifier.describe().name, requestId: request.id })
    return payload
  })
  // Routes that announce what they classify refuse work they could not announce, before reading the body.
  fastify.addHook('onRoute', route => {
    if (route.config?.announces !== true) return
    const refuse = async (_request: unknown, reply: import('fastify').FastifyReply) => {
      const state = notifier.readiness()
      if (state.ready) return
      const body: ErrorResponse = { statusCode: 503, error: 'Service Unavailable', code: 'NOTIFICATIONS_BACKLOGGED', message: `predictions are paused: ${state.reason}; retry in ${retryAfter} s` }
      return reply.code(503).header('retry-after', retryAfter).type('application/json; charset=utf-8').send(body)
    }
    route.onRequest = [...(Array.isArray(route.onRequest) ? route.onRequest : route.onRequest ? [route.onRequest] : []), refuse]
  })
  // What an earlier run left on disk goes out, alongside live traffic.
  fastify.addHook('onReady', async () => { notifier.sns?.start() })
  // Event streams never end by themselves: end them before the server waits for open connections.
  fastify.addHook('preClose', async () => notifier.stream.close())
  fastify.addHook('onClose', async () => await notifier.close())
  if (notifier.sns !== undefined) fastify.log.info({ mode: fastify.config.NOTIFY, grouping: fastify.config.NOTIFY_GROUPING, journal: fastify.config.NOTIFY_JOURNAL }, 'publishing predictions to SNS')
}, { name: 'notifications', dependencies: ['env', 'classifier'] })
