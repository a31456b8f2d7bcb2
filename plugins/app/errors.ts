import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { ErrorResponse } from '../../schemas/common.js'
import { fromFastify, handlingOf, InternalError, NotFoundError } from '../../errors.js'

/** `/data/3/5` to `row 3, column "flow_duration"`, so a schema error names what the client wrote. */
function describePath (path: string, body: unknown): string {
  const cell = /^\/data\/(\d+)\/(\d+)$/.exec(path)
  if (cell) {
    const columns = (body as { columns?: unknown })?.columns
    const name = Array.isArray(columns) ? columns[Number(cell[2])] : undefined
    return `row ${cell[1]}, column ${typeof name === 'string' ? JSON.stringify(name) : cell[2]}`
  }
  const row = /^\/data\/(\d+)$/.exec(path)
  if (row) return `row ${row[1]}`
  return path === '' ? 'body' : path.slice(1).replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.')
}

function validationMessage (error: FastifyError, request: FastifyRequest): string {
  const first = error.validation?.[0]
  if (first === undefined) return error.message
  const where = error.validationContext === 'body' ? describePath(first.instancePath, request.body) : `${error.validationContext}${first.instancePath}`
  const extra = first.params?.additionalProperty !== undefined ? `: ${String(first.params.additionalProperty)}` : ''
  const message = first.keyword === 'type' && /^\/data\/\d+\/\d+$/.test(first.instancePath)
    ? 'must be a number, a string or null'
    : first.message ?? 'is invalid'
  return `${where} ${message}${extra}`
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
    const error = fromFastify(thrown, request.headers['content-type'], e => validationMessage(e, request)) as FastifyError
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
