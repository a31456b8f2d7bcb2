import { Type, type Static } from '@sinclair/typebox'

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

/** Response schemas for the error statuses a route can answer, all of the one ErrorResponse shape. */
export const errorResponses = (...codes: number[]) =>
  Object.fromEntries(codes.map(code => [code, Type.Ref(ErrorResponse, { description: ERROR_DESCRIPTIONS[code] ?? 'Error' })]))

/** API routes accept a key when API_KEYS is set, and nothing otherwise (the empty alternative). */
export const apiSecurity: Array<Record<string, string[]>> = [{}, { bearerKey: [] }, { headerKey: [] }]
