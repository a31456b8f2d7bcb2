import fp from 'fastify-plugin'
import * as helmetModule from 'helmet'
import type { HelmetOptions } from 'helmet'
import cors from '@fastify/cors'
import type { IncomingMessage, ServerResponse } from 'node:http'

// helmet ships ESM and CommonJS typings, and the type check of ts-node (which runs server.ts in the
// tests) reads its default export as the module itself: the function's type is stated here.
type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void
const helmet = (helmetModule as unknown as { default: (options: HelmetOptions) => Middleware }).default

/**
 * The headers helmet writes for these options. They are the same on every response, so they are
 * computed once: @fastify/helmet rebuilds helmet's middlewares (parsing the CSP directives) per request.
 */
export function securityHeaders (options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const res = {
    setHeader: (name: string, value: unknown) => { headers[name.toLowerCase()] = String(value) },
    removeHeader: (name: string) => { delete headers[name.toLowerCase()] },
  }
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => { if (err) throw err })
  return headers
}

/** Security headers always; CORS only for the origins CORS_ORIGINS names (none by default). */
export default fp(async function security (fastify) {
  // Swagger UI loads only same-origin scripts, so the default policy fits it; without
  // upgrade-insecure-requests, since the service is often reached over plain HTTP inside a network.
  const headers = Object.entries(securityHeaders({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }))
  // On the raw response, as @fastify/helmet did, so hijacked replies (the event stream) carry them too.
  fastify.addHook('onRequest', (_request, reply, done) => {
    for (const [name, value] of headers) reply.raw.setHeader(name, value)
    done()
  })
  const origins = (fastify.config.CORS_ORIGINS ?? '').split(',').map(o => o.trim()).filter(o => o !== '')
  if (origins.length > 0) await fastify.register(cors, { origin: origins, methods: ['GET', 'POST'] })
}, { name: 'security', dependencies: ['env'] })
