import closeWithGrace from 'close-with-grace'
import { createApp } from './app.js'
import { LOG_LEVELS } from './schemas/config.js'

// The logger exists before the config plugin runs, so its level is read here; a wrong value is left
// to the config plugin, which names it.
const fastify = createApp({
  logger: {
    level: (LOG_LEVELS as readonly string[]).includes(process.env.LOG_LEVEL ?? '') ? process.env.LOG_LEVEL : 'info',
    redact: ['req.headers.authorization', 'req.headers["x-api-key"]', '*.AWS_SECRET_KEY', '*.AWS_ACCESS_KEY'],
  },
  // Longer than a load balancer's 60 s idle timeout, so the balancer closes idle connections, not us.
  keepAliveTimeout: 65_000,
  // Bounds slow clients; above SageMaker's 60 s model limit plus the socket timeout.
  requestTimeout: 120_000,
})

// A client gets 60 s to send its request headers (Node's default, stated): slow-loris connections end.
fastify.server.headersTimeout = 60_000

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
