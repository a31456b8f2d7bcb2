import fp from 'fastify-plugin'

/** One log line per request (Fastify's own logging writes two), with the request id pino adds. */
export default fp(async function requestLog (fastify) {
  fastify.addHook('onResponse', async (request, reply) => {
    request.log.info({ method: request.method, url: request.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request')
  })
}, { name: 'request-log' })
