import fp from 'fastify-plugin'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { ConfigError, UnauthorizedError } from '../../errors.js'

const digest = (value: string) => createHash('sha256').update(value).digest()

/**
 * The key a request presents: the token of `Authorization: Bearer <key>` (scheme in any case, any
 * spacing), else `x-api-key`. One key per request, whatever else is sent beside it.
 */
export function presentedKey (headers: FastifyRequest['headers']): string | undefined {
  const authorization = headers.authorization
  if (typeof authorization === 'string' && authorization.trim() !== '') {
    return /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] ?? authorization.trim()
  }
  const header = headers['x-api-key']
  return typeof header === 'string' && header.trim() !== '' ? header.trim() : undefined
}

/**
 * The /api scope's guard, one onRequest hook for every route registered in that scope
 * (routes/api/index.ts), whatever its path is spelled like; nothing outside the scope sees it.
 *
 * 1. Who is calling: a verified API key (one of API_KEYS, compared as SHA-256 digests with
 *    timingSafeEqual against every key) is the caller, `key:<digest prefix>`, however it was spelled;
 *    anything else, a missing or a wrong key, is the client's address (`address:<ip>`, see TRUST_PROXY).
 * 2. The caller's request counts against its rate limit (429), failed authentications included, so
 *    guessing keys from one address is throttled like any other traffic from it.
 * 3. Without a valid key, when API_KEYS is set: 401.
 */
export default fp(async function auth (fastify) {
  const keys = (fastify.config.API_KEYS ?? '').split(',').map(k => k.trim()).filter(k => k !== '').map(digest)
  // Set but naming no key (`API_KEYS=,`, a template whose key came out empty) would leave the API open.
  if (fastify.config.API_KEYS !== undefined && keys.length === 0) {
    throw new ConfigError('API_KEYS is set but names no key (only commas and spaces): set at least one key, or unset API_KEYS to leave the API open')
  }

  function identify (request: FastifyRequest): { caller: string, refusal?: { challenge: string, message: string } } {
    const address = `address:${request.ip}`
    if (keys.length === 0) return { caller: address }
    const key = presentedKey(request.headers)
    if (key === undefined) {
      return { caller: address, refusal: { challenge: 'Bearer', message: 'an API key is required: send Authorization: Bearer <key> or x-api-key: <key>' } }
    }
    const presented = digest(key)
    let known = false
    for (const candidate of keys) known = timingSafeEqual(presented, candidate) || known
    if (!known) return { caller: address, refusal: { challenge: 'Bearer error="invalid_token"', message: 'unknown API key' } }
    return { caller: `key:${presented.toString('hex', 0, 8)}` }
  }

  // Callback style, and the limiter only when there is a limit: this runs for every /api request.
  const limiting = fastify.config.RATE_LIMIT_MAX > 0
  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const { caller, refusal } = identify(request)
    request.caller = caller
    // A refused request's body is never read: close its connection rather than drain the body.
    const unreadBody = request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length']) > 0
    if (unreadBody) reply.header('connection', 'close')
    const admitted = () => {
      if (refusal !== undefined) {
        reply.header('www-authenticate', refusal.challenge)
        return done(new UnauthorizedError(refusal.message))
      }
      if (unreadBody) reply.removeHeader('connection')
      done()
    }
    if (!limiting) return admitted()
    fastify.limitCaller(request, reply).then(admitted, done)
  })
}, { name: 'auth', dependencies: ['env', 'rate-limit'] })
