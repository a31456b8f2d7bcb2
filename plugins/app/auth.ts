import fp from 'fastify-plugin'
import createError from '@fastify/error'
import { createHash, timingSafeEqual } from 'node:crypto'

const UnauthorizedError = createError<[string]>('UNAUTHORIZED', '%s', 401)

const digest = (value: string) => createHash('sha256').update(value).digest()

/** The key a request presents: `Authorization: Bearer <key>` or `x-api-key: <key>`. */
function presentedKey (headers: Record<string, string | string[] | undefined>): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(String(headers.authorization ?? ''))?.[1]
  const header = headers['x-api-key']
  return bearer ?? (typeof header === 'string' && header !== '' ? header : undefined)
}

/**
 * Optional API keys (API_KEYS, comma-separated, several for rotation) on /api/*. Keys are compared
 * as SHA-256 digests with timingSafeEqual, against every key, so timing tells nothing about them.
 * Health, readiness, /ping, /metrics and /docs stay open.
 */
export default fp(async function auth (fastify) {
  const keys = (fastify.config.API_KEYS ?? '').split(',').map(k => k.trim()).filter(k => k !== '').map(digest)
  if (keys.length === 0) return
  fastify.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/api/')) return
    const key = presentedKey(request.headers)
    if (key === undefined) {
      reply.header('www-authenticate', 'Bearer')
      throw new UnauthorizedError('an API key is required: send Authorization: Bearer <key> or x-api-key: <key>')
    }
    const presented = digest(key)
    let known = false
    for (const candidate of keys) known = timingSafeEqual(presented, candidate) || known
    if (!known) {
      reply.header('www-authenticate', 'Bearer error="invalid_token"')
      throw new UnauthorizedError('unknown API key')
    }
  })
}, { name: 'auth', dependencies: ['env'] })
