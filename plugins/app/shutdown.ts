import fp from 'fastify-plugin'

/**
 * Lets close() finish once the requests in flight are answered. Fastify refuses new requests while
 * closing, but a keep-alive connection whose request was still running when close began stays open
 * until the keep-alive timeout (65 s here): answer such requests with `Connection: close`, and reap
 * connections as they go idle.
 */
export default fp(async function shutdown (fastify) {
  let closing = false
  let reaper: NodeJS.Timeout | undefined
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
  fastify.addHook('preClose', async () => {
    closing = true
    if (fastify.server.listening) reaper = setInterval(() => fastify.server.closeIdleConnections(), 50).unref()
  })
  fastify.addHook('onClose', async () => clearInterval(reaper))
}, { name: 'shutdown' })
