import { STATUS_CODES } from 'node:http'
import { Type, type Static } from '@sinclair/typebox'
import {
  BodyStalledError, BodyTooLargeError, InvalidInputError, OverloadedError, RateLimitedError, ScoresUnavailableError, TooManyRowsError, UnauthorizedError,
  UnsupportedMediaTypeError, UpstreamError, UpstreamTimeoutError,
} from '../errors.js'

/** The one shape of every error response. */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ minimum: 400, maximum: 599, examples: [400] }),
  error: Type.String({ description: 'HTTP reason phrase', examples: ['Bad Request'] }),
  code: Type.Optional(Type.String({ description: 'Stable machine-readable code', examples: ['INVALID_INPUT'] })),
  message: Type.String({ description: 'What was wrong, naming the offending field, row or column', examples: ['row 3 has 78 values but there are 79 columns'] }),
}, { $id: 'ErrorResponse', title: 'ErrorResponse' })
export type ErrorResponse = Static<typeof ErrorResponse>

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'The request is not usable: for a body, unparsable, nested deeper than a split frame, wrong shape, duplicate columns, a row of the wrong length, missing features or a non-numeric value (the message names the row and column); for a query, the parameter named',
  401: 'Missing or unknown API key (when API_KEYS is set)',
  404: 'No such route',
  408: 'The body stopped arriving for BODY_STALL_TIMEOUT_MS',
  413: 'The body or the number of rows is over the limit',
  415: 'The content type is not application/json (optionally with format=pandas-split) or text/csv',
  429: 'Too many requests from this key (or, without a valid one, this address); Retry-After says when to come back',
  501: 'Not available with this backend: explanations need the embedded model; scores need a SageMaker endpoint that returns probabilities',
  502: 'The model backend failed or answered something unusable',
  503: 'The service is overloaded (load shedding, too many bodies in flight, the model backend throttling, or notifications that can be neither published nor written: NOTIFICATIONS_BACKLOGGED) or shutting down; Retry-After says when to come back',
  504: 'The model backend did not answer in time',
}

/** The body the error handler answers for `error`, one of the catalogue's (errors.ts). */
function bodyOf (error: Error & { statusCode?: number, code: string }): ErrorResponse {
  const statusCode = error.statusCode ?? 500
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code: error.code, message: error.message }
}

/**
 * Examples per status, each with its own code and message as the catalogue writes them, so that
 * Swagger UI and generated docs do not show a 400 under every status. The messages are those the
 * service answers in the situation the summary names; a status with two causes (413) shows both.
 */
type ErrorExample = { summary: string, error: Error & { code: string } }
const ERROR_EXAMPLES: Record<number, ErrorExample | ErrorExample[]> = {
  400: { summary: 'A row of the wrong length', error: new InvalidInputError('row 3 has 78 values but there are 79 columns') },
  401: { summary: 'No API key, while API_KEYS is set', error: new UnauthorizedError('an API key is required: send Authorization: Bearer <key> or x-api-key: <key>') },
  408: { summary: 'The body stopped arriving', error: new BodyStalledError(10000) },
  413: [
    { summary: 'More rows than MAX_ROWS', error: new TooManyRowsError('10001 rows exceed the limit of 10000 rows per request') },
    { summary: 'A body over BODY_LIMIT (answered unread)', error: new BodyTooLargeError(6291456, '/api/predictions') },
  ],
  415: { summary: 'A content type no flow route reads', error: new UnsupportedMediaTypeError('unsupported content type "text/plain": send "application/json; format=pandas-split" or "application/json" or "text/csv"') },
  429: { summary: 'Over RATE_LIMIT_MAX requests in the window', error: new RateLimitedError('more than 100 requests in 60 s: retry in 1 minute') },
  501: { summary: 'Scores from a SageMaker endpoint that answers labels', error: new ScoresUnavailableError('the SageMaker endpoint ids-endpoint answers labels, not probabilities: deploy a model that returns the attack probability (e.g. predict_proba) to get scores') },
  502: { summary: 'The model failed', error: new UpstreamError('the SageMaker endpoint failed (ModelError)') },
  503: { summary: 'Load shedding', error: new OverloadedError('the server is overloaded (event loop delay 412 ms): retry in 5 s') },
  504: { summary: 'The model did not answer in time', error: new UpstreamTimeoutError('the SageMaker endpoint did not answer in time') },
}

/** The example of an error status, as OpenAPI Example Objects named by its code (plugins/external/swagger.ts adds it). */
export function errorExample (status: number): Record<string, { summary: string, value: ErrorResponse }> | undefined {
  const examples = ERROR_EXAMPLES[status]
  if (examples === undefined) return undefined
  return Object.fromEntries([examples].flat().map(example => [example.error.code, { summary: example.summary, value: bodyOf(example.error) }]))
}

/** Response schemas for the error statuses a route can answer, all of the one ErrorResponse shape. */
export const errorResponses = (...codes: number[]) =>
  Object.fromEntries(codes.map(code => [code, Type.Ref(ErrorResponse, { description: ERROR_DESCRIPTIONS[code] ?? 'Error' })]))

/** API routes accept a key when API_KEYS is set, and nothing otherwise (the empty alternative). */
export const apiSecurity: Array<Record<string, string[]>> = [{}, { bearerKey: [] }, { headerKey: [] }]
