import fp from 'fastify-plugin'

// Query parameters that carry credentials, by name: api_key, apikey, key, token, access_token, secret, password...
const SECRET_PARAM = /^(?:.*[-_.]?(?:key|token|secret|password|passwd|pwd|auth|authorization|signature|credential)s?|sig)$/i

/** The URL with the values of credential-like query parameters replaced, as logs may show it. */
export function redactUrl (url: string): string {
  const start = url.indexOf('?')
  if (start === -1) return url
  const query = url.slice(start + 1).split('&').map(pair => {
    const equals = pair.indexOf('=')
    const name = equals === -1 ? pair : pair.slice(0, equals)
    let decoded = name
    try { decoded = decodeURIComponent(name.replace(/\+/g, ' ')) } catch {}
    return equals !== -1 && SECRET_PARAM.test(decoded) ? `${name}=[REDACTED]` : pair
  })
  return `${url.slice(0, start)}?${query.join('&')}`
}

/** Fastify's request serializer with the URL redacted, for loggers that log `req`. */
export const logSerializers = {
  req: (request: { method: string, url: string, hostname?: string, ip?: string, id?: string }) =>
    ({ method: request.method, url: redactUrl(request.url), hostname: request.hostname, remoteAddress: request.ip, reqId: request.id }),
}

/**
 * One log line per request (Fastify's own logging writes two), with the request id pino adds: the
 * route that matched (what to aggregate by; absent for a 404) and the URL as sent, logged with credential-like query parameters redacted: a key sent as `?api_key=` stays out.
 */
export default fp(async function requestLog (fastify) {
  fastify.addHook('onResponse', async (request, reply) => {
    request.log.info({ method: request.method, route: request.routeOptions.url, url: redactUrl(request.url), statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request')
  })
}, { name: 'request-log' })
