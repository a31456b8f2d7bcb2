import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { RateLimitedError } from '../../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Counts the request against its caller's bucket; throws 429 (with Retry-After) past the limit. */
    limitCaller(request: FastifyRequest, reply: FastifyReply): Promise<void>
  }
  interface FastifyRequest {
    /** Who the request counts against: `key:<digest>` for a verified API key, else `address:<ip>`. */
    caller?: string
  }
}

/**
 * Optional per-caller rate limit (RATE_LIMIT_MAX per RATE_LIMIT_WINDOW_MS): 429 with Retry-After.
 * Applied by the /api scope's guard (plugins/app/auth.ts) once it knows who the caller is, not to
 * every route: the caller is the verified key, never the header as sent, so neither made-up keys
 * nor other spellings of a real one start fresh buckets.
 */
export default fp(async function limits (fastify) {
  const { RATE_LIMIT_MAX, RATE_LIMIT_WINDOW_MS } = fastify.config
  if (RATE_LIMIT_MAX === 0) {
    fastify.decorate('limitCaller', async () => {})
    return
  }
  await fastify.register(rateLimit, {
    global: false,
    max: RATE_LIMIT_MAX,
    timeWindow: RATE_LIMIT_WINDOW_MS,
    keyGenerator: (request) => request.caller ?? `address:${request.ip}`,
    errorResponseBuilder: (_request, context) => new RateLimitedError(`more than ${context.max} requests in ${RATE_LIMIT_WINDOW_MS / 1000} s: retry in ${context.after}`),
  })
  const handler = fastify.rateLimit()
  fastify.decorate('limitCaller', async (request: FastifyRequest, reply: FastifyReply) => { await handler.call(fastify, request, reply) })
}, { name: 'rate-limit', dependencies: ['env'] })
