import createError from '@fastify/error'

/** The client sent something the model cannot use: answered 400 with the message as is. */
export const InvalidInputError = createError<[string]>('INVALID_INPUT', '%s', 400)
/** More rows than MAX_ROWS: the message says how many and what to do. */
export const TooManyRowsError = createError<[string]>('TOO_MANY_ROWS', '%s: split the frame', 413)
/** A feature the model needs is not among the request's columns. */
export const MissingFeaturesError = createError<[string]>('MISSING_FEATURES', 'missing features the model needs: %s', 400)
/** A cell in a model feature is not a number. */
export const NonNumericValueError = createError<[string]>('NON_NUMERIC_VALUE', '%s', 400)
/** The backend cannot give what was asked (scores from an endpoint that answers labels). */
export const ScoresUnavailableError = createError<[string]>('SCORES_UNAVAILABLE', '%s', 501)
/** The model (SageMaker) failed or answered something unusable. Never carries upstream details. */
export const UpstreamError = createError<[string]>('UPSTREAM_ERROR', '%s', 502)
/** The model is throttling or overloaded: the client may retry shortly. */
export const UpstreamUnavailableError = createError<[string]>('UPSTREAM_UNAVAILABLE', '%s', 503)
export const UpstreamTimeoutError = createError<[string]>('UPSTREAM_TIMEOUT', '%s', 504)
/** Explanations need the embedded model and its node covers: the SageMaker backend has none. */
export const ExplanationsUnavailableError = createError<[string]>('EXPLANATIONS_UNAVAILABLE', '%s', 501)
/** A model directory that cannot be served: raised at start-up, so the process fails fast. */
export class ModelLoadError extends Error {
  override name = 'ModelLoadError'
}
/** A JSON body of the wrong family (an MLflow scoring body on a split route, or an MLflow body with unknown fields). */
export const MlflowBodyError = createError<[string]>('MLFLOW_BODY', '%s', 400)
