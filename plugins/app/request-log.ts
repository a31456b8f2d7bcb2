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

// The configuration's credentials, by name: wherever one is a key in a log line, its value is replaced.
const CONFIG_SECRETS = new Set(['AWS_SECRET_KEY', 'AWS_ACCESS_KEY', 'API_KEYS'])
const CONFIG_SECRET_KEY = /"(?:AWS_SECRET_KEY|AWS_ACCESS_KEY|API_KEYS)":/
const CENSOR = '[Redacted]'

function censorSecrets (value: unknown): void {
  if (typeof value !== 'object' || value === null) return
  if (Array.isArray(value)) {
    for (const item of value) censorSecrets(item)
    return
  }
  const record = value as Record<string, unknown>
  for (const key of Object.keys(record)) {
    if (CONFIG_SECRETS.has(key)) record[key] = CENSOR
    else censorSecrets(record[key])
  }
}

/**
 * A log line (pino's JSON, as written) with the value of every AWS_SECRET_KEY, AWS_ACCESS_KEY and
 * API_KEYS key replaced, at any depth, bindings included. pino's wildcard paths (`*.AWS_SECRET_KEY`)
 * did this for one level by cloning and walking every line (~3.5 µs a line); here a line is only
 * searched for the quoted key, and rewritten when it names one. A line that would not parse is withheld.
 */
export function redactConfigSecrets (line: string): string {
  if (!CONFIG_SECRET_KEY.test(line)) return line
  try {
    const parsed = JSON.parse(line) as unknown
    censorSecrets(parsed)
    return `${JSON.stringify(parsed)}\n`
  } catch {
    return `${JSON.stringify({ level: 50, time: Date.now(), msg: 'a log line naming a configuration credential could not be redacted: withheld' })}\n`
  }
}

/**
 * pino's options that keep credentials out of the logs: the request headers that carry them (pino's
 * redact, exact paths) and the configuration's keys in any line (redactConfigSecrets). The server's
 * logger uses them (server.ts).
 */
export const logRedaction = {
  redact: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers["proxy-authorization"]', 'req.headers.cookie'],
  hooks: { streamWrite: redactConfigSecrets },
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
  fastify.addHook('onResponse', (request, reply, done) => {
    request.log.info({ method: request.method, route: request.routeOptions.url, url: redactUrl(request.url), statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request')
    done()
  })
}, { name: 'request-log' })
