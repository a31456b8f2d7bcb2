import closeWithGrace from 'close-with-grace'
import { createApp } from './app.js'
import { LOG_LEVELS } from './schemas/config.js'
import { logRedaction, logSerializers } from './plugins/app/request-log.js'
import { ConfigError, ModelLoadError } from './errors.js'
import { logDestination } from './log-destination.js'

// The logger exists before the config plugin runs, so its level is read here; a wrong value is left
// to the config plugin, which names it. Credentials are redacted wherever a log line could carry
// them: headers, the URL's query string (logSerializers), the AWS keys and API keys of the configuration
// (logRedaction).
const logger = {
  level: (LOG_LEVELS as readonly string[]).includes(process.env.LOG_LEVEL ?? '') ? process.env.LOG_LEVEL : 'info',
  ...logRedaction,
  serializers: logSerializers,
  // stdout, flushed at exit within a bound (log-destination.ts).
  stream: logDestination().destination,
}

let app: ReturnType<typeof createApp>
try {
  // TRUST_PROXY is read here, from process.env, as createApp reads it for the tests from theirs.
  app = createApp({
    logger,
    // Longer than a load balancer's 60 s idle timeout, so the balancer closes idle connections, not us.
    keepAliveTimeout: 65_000,
    // Bounds slow clients; above SageMaker's 60 s model limit plus the socket timeout.
    requestTimeout: 120_000,
  })
} catch (err) {
  // Only configuration is read before the logger exists (TRUST_PROXY); anything else keeps its stack.
  const line = err instanceof ConfigError ? { msg: `could not start: ${err.message}` } : { msg: `could not start: ${(err as Error).message}`, stack: (err as Error).stack }
  console.error(JSON.stringify({ level: 60, time: Date.now(), ...line }))
  process.exit(1)
}
const fastify = app

/** Why start-up failed, in one line (with the stack only for what is not a setting): on stderr too when LOG_LEVEL silences it. */
function couldNotStart (message: string, err?: unknown): void {
  if (err === undefined) fastify.log.fatal(`could not start: ${message}`)
  else fastify.log.fatal({ err }, `could not start: ${message}`)
  if (fastify.log.level === 'silent') console.error(JSON.stringify({ level: 60, time: Date.now(), msg: `could not start: ${message}` }))
}

// A client gets 60 s to send its request headers (Node's default, stated): slow-loris connections end.
fastify.server.headersTimeout = 60_000

try {
  await fastify.ready()
} catch (err) {
  // Configuration and model problems: one line saying what to fix. Anything else is a bug: its stack too.
  if (err instanceof ConfigError || err instanceof ModelLoadError) couldNotStart(err.message)
  else couldNotStart((err as Error).message, err)
  process.exit(1)
}

closeWithGrace({ delay: fastify.config.SHUTDOWN_TIMEOUT_MS }, async ({ signal, err }) => {
  if (err) fastify.log.error({ err }, 'closing after an error')
  else fastify.log.info({ signal }, 'closing')
  await fastify.close()
})

try {
  await fastify.listen({ port: fastify.config.PORT, host: fastify.config.HOST })
} catch (err) {
  // A port in use, a HOST that is not this machine's: what to fix, in one line. Closing first keeps
  // what the app started (a journal replay) in order.
  couldNotStart((err as Error).message)
  await fastify.close().catch(() => {})
  process.exit(1)
}
