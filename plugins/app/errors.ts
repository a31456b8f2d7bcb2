import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { ErrorResponse } from '../../schemas/common.js'
import { PREDICTION_MEDIA_TYPES } from '../../schemas/predictions.js'
import { validationMessage } from '../../classifier/body.js'

// Errors of ours whose messages are written for clients, even at 5xx (they never carry upstream details).
const SAFE_5XX = new Set(['UPSTREAM_ERROR', 'UPSTREAM_TIMEOUT', 'UPSTREAM_UNAVAILABLE', 'OVERLOADED', 'EXPLANATIONS_UNAVAILABLE', 'SCORES_UNAVAILABLE'])
// Answers the service gives on purpose (under load, or a feature the backend lacks): worth a warning, not an error with a stack.
const EXPECTED_5XX = new Set(['UPSTREAM_UNAVAILABLE', 'OVERLOADED', 'EXPLANATIONS_UNAVAILABLE', 'SCORES_UNAVAILABLE'])

function validationMessageOf (error: FastifyError, request: FastifyRequest): string {
  const first = error.validation?.[0]
  if (first === undefined) return error.message
  return validationMessage(first, error.validationContext ?? 'body', request.body)
}

function send (reply: FastifyReply, statusCode: number, message: string, code?: string) {
  const body: ErrorResponse = { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, ...(code ? { code } : {}) }
  return reply.code(statusCode).type('application/json; charset=utf-8').send(body)
}

/** One error handler: every error answers the ErrorResponse shape; 5xx internals stay in the logs. */
export default fp(async function errors (fastify) {
  fastify.setErrorHandler(function (error: FastifyError, request, reply) {
    if (error.validation) return send(reply, 400, validationMessageOf(error, request), 'VALIDATION_ERROR')
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      const type = request.headers['content-type']
      return send(reply, 415, `${type ? `unsupported content type ${JSON.stringify(type)}` : 'no content type'}: send ${PREDICTION_MEDIA_TYPES.map(t => `"${t}"`).join(' or ')}`, 'UNSUPPORTED_MEDIA_TYPE')
    }
    const statusCode = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode <= 599 ? error.statusCode : 500
    if (statusCode < 500) {
      request.log.info({ code: error.code, message: error.message }, 'client error')
      return send(reply, statusCode, error.message, error.code)
    }
    if (EXPECTED_5XX.has(error.code)) request.log.warn({ code: error.code, message: error.message }, 'request shed')
    else request.log.error({ err: error }, 'request failed')
    if (error.code === 'UPSTREAM_UNAVAILABLE' && !reply.hasHeader('retry-after')) reply.header('retry-after', 1)
    if (SAFE_5XX.has(error.code)) return send(reply, statusCode, error.message, error.code)
    return send(reply, statusCode, 'the server failed to answer: the error was logged', 'INTERNAL_ERROR')
  })
  fastify.setNotFoundHandler(function (request, reply) {
    return send(reply, 404, `no route ${request.method} ${request.url.split('?')[0]}`, 'NOT_FOUND')
  })
}, { name: 'errors' })
