import createError, { type FastifyError } from '@fastify/error'

/**
 * The error catalogue: every error the service answers, defined once, with how the one error handler
 * (plugins/app/errors.ts) treats it. Code throws these; nothing matches codes by string elsewhere.
 * Errors from Fastify itself are translated to these in one place, `fromFastify` below.
 */

/** How the error handler answers and logs an error of the catalogue. */
export interface Handling {
  /** Its message is written for clients and shown as is even at 5xx (it never carries upstream details). */
  exposed: boolean
  /** A 5xx the service answers on purpose (load shed, a feature the backend lacks): a warning in the log, no stack. */
  expected: boolean
  /** Retry-After in seconds, or `pressure` for PRESSURE_RETRY_AFTER_S; set unless the thrower set it. */
  retryAfter?: number | 'pressure'
}

type Defined = new (...args: never[]) => FastifyError
const catalogue = new Map<Defined, Handling>()

function define<A extends unknown[]> (code: string, message: string, statusCode: number, handling: Partial<Handling> = {}) {
  const defined = createError<A>(code, message, statusCode)
  // Client errors are always shown; a 5xx only when said so.
  catalogue.set(defined as unknown as Defined, { exposed: statusCode < 500, expected: false, ...handling })
  return defined
}

/** How the handler treats `error`, or undefined when it is not of the catalogue (a bug: logged, hidden). */
export function handlingOf (error: unknown): Handling | undefined {
  return error instanceof Error ? catalogue.get(error.constructor as Defined) : undefined
}

// 400: the request is not usable.
/** A body or query that fails its schema; the message names the row, column or field. */
export const ValidationError = define<[string]>('VALIDATION_ERROR', '%s', 400)
/** A JSON content type with no body. */
export const EmptyBodyError = define<[string]>('EMPTY_BODY', 'the body is empty but the content type says %s: send the flows', 400)
/** The client sent something the model cannot use (the SageMaker model refused it too). */
export const InvalidInputError = define<[string]>('INVALID_INPUT', '%s', 400)
/** A feature the model needs is not among the request's columns. */
export const MissingFeaturesError = define<[string]>('MISSING_FEATURES', 'missing features the model needs: %s', 400)
/** A cell in a model feature is not a number. */
export const NonNumericValueError = define<[string]>('NON_NUMERIC_VALUE', '%s', 400)
/** An MLflow scoring body sent to a split-frame route, or an /invocations body with unknown fields. */
export const MlflowBodyError = define<[string]>('MLFLOW_BODY', '%s', 400)
/** JSON nested deeper than a split frame can be, refused from a scan of its bytes. */
export const JsonTooDeepError = define<[number]>('JSON_TOO_DEEP', 'the body nests deeper than %d levels of arrays and objects: a split frame nests 3', 400)
/** The API guard: no key, or an unknown one, while API_KEYS is set. */
export const UnauthorizedError = define<[string]>('UNAUTHORIZED', '%s', 401)
export const NotFoundError = define<[string, string]>('NOT_FOUND', 'no route %s %s', 404)
/** The body stopped arriving for BODY_STALL_TIMEOUT_MS. */
export const BodyStalledError = define<[number]>('BODY_STALLED', 'the body sent nothing for %d ms: send it without pauses', 408)
/** A body over its route's byte limit (BODY_LIMIT, or EXPLAIN_BODY_LIMIT on /api/explanations), refused unread. */
export const BodyTooLargeError = define<[number, string]>('BODY_TOO_LARGE', 'the body exceeds the limit of %d bytes per request to %s: split the frame', 413)
/** More rows than MAX_ROWS: the message says how many and what to do. */
export const TooManyRowsError = define<[string]>('TOO_MANY_ROWS', '%s: split the frame', 413)
/** A content type the route does not read; the message names it and what to send. */
export const UnsupportedMediaTypeError = define<[string]>('UNSUPPORTED_MEDIA_TYPE', '%s', 415)
/** The client closed its connection before its answer: its work stopped where it waited. Nobody reads the answer. */
export const ClientGoneError = define<[]>('CLIENT_GONE', 'the client closed the connection before its answer was ready', 499)
/** Over RATE_LIMIT_MAX requests in the window (@fastify/rate-limit sets Retry-After). */
export const RateLimitedError = define<[string]>('RATE_LIMITED', '%s', 429)

// 5xx: what the service cannot do now; the message is shown when it is written for clients.
/** A bug or an unforeseen failure: what clients see in place of its message, which is logged. */
export const InternalError = define<[]>('INTERNAL_ERROR', 'the server failed to answer: the error was logged', 500, { exposed: true })
/** The backend cannot give what was asked (scores from an endpoint that answers labels). */
export const ScoresUnavailableError = define<[string]>('SCORES_UNAVAILABLE', '%s', 501, { exposed: true, expected: true })
/** Explanations need the embedded model and its node covers: the SageMaker backend has none. */
export const ExplanationsUnavailableError = define<[string]>('EXPLANATIONS_UNAVAILABLE', '%s', 501, { exposed: true, expected: true })
/** The model (SageMaker) failed or answered something unusable. Never carries upstream details. */
export const UpstreamError = define<[string]>('UPSTREAM_ERROR', '%s', 502, { exposed: true })
/** The model is throttling or overloaded: the client may retry shortly. */
export const UpstreamUnavailableError = define<[string]>('UPSTREAM_UNAVAILABLE', '%s', 503, { exposed: true, expected: true, retryAfter: 1 })
/** Load shedding (event loop, heap, resident memory) or too many request bodies in flight. */
export const OverloadedError = define<[string]>('OVERLOADED', '%s', 503, { exposed: true, expected: true, retryAfter: 'pressure' })
/** More probe or scrape requests waiting than PROBE_QUEUE_MAX: a flood of the operational endpoints. */
export const ProbesBusyError = define<[string]>('PROBES_BUSY', '%s', 503, { exposed: true, expected: true, retryAfter: 1 })
/** A prediction could be neither published nor journaled: routes that classify pause. */
export const NotificationsBackloggedError = define<[string]>('NOTIFICATIONS_BACKLOGGED', 'predictions are paused: %s', 503, { exposed: true, expected: true, retryAfter: 'pressure' })
export const UpstreamTimeoutError = define<[string]>('UPSTREAM_TIMEOUT', '%s', 504, { exposed: true })

/**
 * Fastify's own errors, in the catalogue's terms: a schema failure (its message made by `describe`,
 * which knows the body), an empty JSON body, a content type no parser reads. Any other error is
 * returned as it is.
 */
export function fromFastify (error: FastifyError, contentType: string | undefined, describe: (error: FastifyError) => string, route?: { bodyLimit?: number, path: string }): Error {
  if (error.validation) return new ValidationError(describe(error))
  // Fastify's own message names no limit; ours names the route's.
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' && route?.bodyLimit !== undefined) return new BodyTooLargeError(route.bodyLimit, route.path)
  if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return new EmptyBodyError(JSON.stringify(contentType ?? 'application/json'))
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new UnsupportedMediaTypeError(contentType ? `unsupported content type ${JSON.stringify(contentType)}` : 'no content type')
  }
  return error
}

// Start-up: the process stops with one line saying what to fix; anything else is a bug and keeps its stack.
/** A configuration the service cannot run with, named by its variable. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}
/** A model directory that cannot be served: raised at start-up, so the process fails fast. */
export class ModelLoadError extends Error {
  override name = 'ModelLoadError'
}
