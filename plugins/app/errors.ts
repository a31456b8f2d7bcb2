import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { ErrorResponse } from '../../schemas/common.js'
import { validationMessage } from '../../input/body.js'
import { fromFastify, handlingOf, InternalError, NotFoundError } from '../../errors.js'

function validationMessageOf (error: FastifyError, request: FastifyRequest): string {
  const first = error.validation?.[0]
  if (first === undefined) return error.message
  return validationMessage(first, error.validationContext ?? 'body', request.body)
}

function send (reply: FastifyReply, statusCode: number, message: string, code?: string) {
  const body: ErrorResponse = { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, ...(code ? { code } : {}) }
  return reply.code(statusCode).type('application/json; charset=utf-8').send(body)
}

/**
 * One error handler: every error answers the ErrorResponse shape. What is shown, logged and retried
 * comes from the error's entry in the catalogue (errors.ts); an error not in it is a bug, logged with
 * its stack and answered INTERNAL_ERROR, unless it is a client error of Fastify's own.
 */
export default fp(async function errors (fastify) {
  const pressureRetryAfter = fastify.config.PRESSURE_RETRY_AFTER_S
  fastify.setErrorHandler(function (thrown: FastifyError, request, reply) {
    const route = { bodyLimit: request.routeOptions.bodyLimit, path: request.url.split('?')[0] }
    const error = fromFastify(thrown, request.headers['content-type'], e => validationMessageOf(e, request), route) as FastifyError
    const handling = handlingOf(error)
    const statusCode = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode <= 599 ? error.statusCode : 500
    if (statusCode < 500) {
      request.log.info({ code: error.code, message: error.message }, 'client error')
      return send(reply, statusCode, error.message, error.code)
    }
    if (handling?.expected === true) request.log.warn({ code: error.code, message: error.message }, 'request shed')
    else request.log.error({ err: error }, 'request failed')
    if (handling?.retryAfter !== undefined && !reply.hasHeader('retry-after')) {
      reply.header('retry-after', handling.retryAfter === 'pressure' ? pressureRetryAfter : handling.retryAfter)
    }
    if (handling?.exposed === true) return send(reply, statusCode, error.message, error.code)
    // Its status stays (a 503 is still one to retry); its message stays in the log.
    const internal = new InternalError()
    return send(reply, statusCode, internal.message, internal.code)
  })
  fastify.setNotFoundHandler(function (request, reply) {
    const error = new NotFoundError(request.method, request.url.split('?')[0])
    return send(reply, 404, error.message, error.code)
  })
}, { name: 'errors', dependencies: ['env'] })
