import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { apiSecurity, errorResponses } from '../../schemas/common.js'
import { STREAM_HEADERS } from '../../notifications/stream.js'
import { NotificationQuery, NotificationStats } from '../../schemas/notifications.js'

const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  fastify.get('/notifications', {
    schema: {
      operationId: 'streamNotifications',
      security: apiSecurity,
      tags: ['notifications'],
      summary: 'Live notifications as Server-Sent Events',
      description: 'Each `prediction` event carries `{"message": <the SNS message: a pandas split frame with a prediction column, ' +
        'of one request\'s rows of one class (NOTIFY_GROUPING=request) or of one row (row)>, ' +
        '"attributes": {"prediction": "attack"|"benign", "model", "request_id", "rows" (request grouping)}}`. ' +
        'Attacks only unless `include=all`; NOTIFY=attacks or none applies here too. A subscriber that falls ' +
        'too far behind is disconnected and may reconnect.',
      querystring: NotificationQuery,
      response: {
        200: {
          description: 'An endless text/event-stream',
          content: { 'text/event-stream': { schema: Type.String({ examples: ['id: 1\nevent: prediction\ndata: {"message":{...},"attributes":{...}}\n\n'] }) } },
        },
        ...errorResponses(400, 401, 429, 503),
      },
    },
  }, async function (request, reply) {
    reply.hijack()
    // HEAD (Fastify answers it with this handler): the stream's headers, then the end.
    if (request.method === 'HEAD') {
      reply.raw.writeHead(200, STREAM_HEADERS)
      reply.raw.end()
      return
    }
    const unsubscribe = fastify.notifications.subscribe(reply.raw, request.query.include ?? 'attacks')
    request.raw.on('close', unsubscribe)
  })

  fastify.get('/notifications/stats', {
    schema: {
      operationId: 'getNotificationStats',
      security: apiSecurity,
      tags: ['notifications'],
      summary: 'Notification counters: published, retried, spilled, dead-lettered, queued, held, backlog',
      response: {
        200: Type.Ref(NotificationStats, { description: 'Counters since start' }),
        ...errorResponses(401, 429, 503),
      },
    },
  }, async function () {
    return fastify.notifications.stats()
  })
}

export default routes
