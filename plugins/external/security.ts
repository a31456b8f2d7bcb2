import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'
import cors from '@fastify/cors'

/** Security headers always; CORS only for the origins CORS_ORIGINS names (none by default). */
export default fp(async function security (fastify) {
  // Swagger UI loads only same-origin scripts, so the default policy fits it; without
  // upgrade-insecure-requests, since the service is often reached over plain HTTP inside a network.
  await fastify.register(helmet, { contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } })
  const origins = (fastify.config.CORS_ORIGINS ?? '').split(',').map(o => o.trim()).filter(o => o !== '')
  if (origins.length > 0) await fastify.register(cors, { origin: origins, methods: ['GET', 'POST'] })
}, { name: 'security', dependencies: ['env'] })
