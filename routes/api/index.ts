import type { FastifyInstance } from 'fastify'
import auth from '../../plugins/app/auth.js'
import driftRoutes from './drift.js'
import explanationRoutes from './explanations.js'
import modelRoutes from './model.js'
import notificationRoutes from './notifications.js'
import predictionRoutes from './predictions.js'

/**
 * The /api scope: registered with the `/api` prefix and NOT wrapped in fastify-plugin, so the guard
 * below (API key, then rate limit) is an onRequest hook of this scope only and runs for every route
 * registered here, by the route matched, however its path is spelled. Nothing outside sees it.
 *
 * Add every new /api route here, after the guard: it is then protected and rate limited without
 * anything else to remember. Routes registered elsewhere are public.
 */
export default async function api (fastify: FastifyInstance) {
  await fastify.register(auth)
  await fastify.register(modelRoutes)
  await fastify.register(predictionRoutes)
  await fastify.register(notificationRoutes)
  await fastify.register(explanationRoutes)
  await fastify.register(driftRoutes)
}
