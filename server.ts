import closeWithGrace from 'close-with-grace'
import { createApp } from './app.js'

// Log level comes from the environment before the config plugin runs, since the logger exists first.
const fastify = createApp({
  logger: {
    level: process.env.LOG_LEVEL || 'info',
    redact: ['req.headers.authorization', 'req.headers["x-api-key"]', '*.AWS_SECRET_KEY', '*.AWS_ACCESS_KEY'],
  },
  // Longer than a load balancer's 60 s idle timeout, so the balancer closes idle connections, not us.
  keepAliveTimeout: 65_000,
  // Bounds slow clients; above SageMaker's 60 s model limit plus the socket timeout.
  requestTimeout: 120_000,
})

try {
  await fastify.ready()
} catch (err) {
  // Configuration and model problems: one line saying what to fix, not a stack.
  fastify.log.fatal(`could not start: ${(err as Error).message}`)
  process.exit(1)
}

closeWithGrace({ delay: fastify.config.SHUTDOWN_TIMEOUT_MS }, async ({ signal, err }) => {
  if (err) fastify.log.error({ err }, 'closing after an error')
  else fastify.log.info({ signal }, 'closing')
  await fastify.close()
})

await fastify.listen({ port: fastify.config.PORT, host: fastify.config.HOST })
