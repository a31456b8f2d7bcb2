import fp from 'fastify-plugin'
import { isProbe } from './probes.js'
import rateLimit from '@fastify/rate-limit'

/** Optional per-client rate limit on the API (RATE_LIMIT_MAX per RATE_LIMIT_WINDOW_MS): 429 with Retry-After. */
export default fp(async function limits (fastify) {
  const { RATE_LIMIT_MAX, RATE_LIMIT_WINDOW_MS } = fastify.config
  if (RATE_LIMIT_MAX === 0) return
  await fastify.register(rateLimit, {
    max: RATE_LIMIT_MAX,
    timeWindow: RATE_LIMIT_WINDOW_MS,
    // A client is its API key when it sends one, else its address (X-Forwarded-For behind a balancer).
    keyGenerator: (request) => String(request.headers['x-api-key'] ?? request.headers.authorization ?? request.ip),
    allowList: (request) => isProbe(request.url),
    errorResponseBuilder: (_request, context) => ({
      statusCode: 429,
      code: 'RATE_LIMITED',
      message: `more than ${context.max} requests in ${context.after === '1 minute' ? 'a minute' : context.after}: retry later`,
    }),
  })
}, { name: 'rate-limit', dependencies: ['env'] })
