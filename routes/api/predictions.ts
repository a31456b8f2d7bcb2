import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import createError from '@fastify/error'
import { Type } from '@sinclair/typebox'
import { checkFrame } from '../../classifier/frame.js'
import { checkRowCount, compileFrameValidator, parseJsonBody } from '../../classifier/body.js'
import { apiSecurity, errorResponses } from '../../schemas/common.js'
import { PandasSplitFrame, PREDICTION_MEDIA_TYPES, Predictions, type Prediction } from '../../schemas/predictions.js'

const UnsupportedMediaTypeError = createError<[string]>('FST_ERR_CTP_INVALID_MEDIA_TYPE', '%s', 415)

/**
 * `application/json`, optionally with `format=pandas-split` and `charset=utf-8`, in any case and spacing.
 * Other formats (records, columns...) are other bodies, so they are refused here rather than misread.
 */
export function isSupportedMediaType (header: string | undefined): boolean {
  if (header === undefined) return false
  // Clients send one spelling request after request: remember the answers for a few.
  let supported = mediaTypes.get(header)
  if (supported === undefined) {
    supported = parseMediaType(header)
    if (mediaTypes.size >= MEDIA_TYPE_CACHE_SIZE) mediaTypes.delete(mediaTypes.keys().next().value as string)
    mediaTypes.set(header, supported)
  }
  return supported
}
const MEDIA_TYPE_CACHE_SIZE = 32
const mediaTypes = new Map<string, boolean>()

function parseMediaType (header: string): boolean {
  const [essence, ...params] = header.split(';').map(part => part.trim().toLowerCase())
  if (essence !== 'application/json') return false
  return params.every(param => {
    if (param === '') return true
    const [key, value = ''] = param.split('=').map(part => part.trim().replace(/^"(.*)"$/, '$1'))
    if (key === 'format') return value === 'pandas-split'
    if (key === 'charset') return value === 'utf-8' || value === 'utf8'
    return true
  })
}

const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  const { BODY_LIMIT, MAX_ROWS, WORKER_MIN_BYTES, NOTIFY } = fastify.config
  const pool = fastify.workerPool

  // Large bodies stay bytes, for a worker thread to parse, check and classify (classifier/body.ts, the
  // same steps as here); the others are parsed here, as Fastify's own JSON parser would.
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body: Buffer, done) => {
    if (pool !== null && body.length >= WORKER_MIN_BYTES) return done(null, body)
    try {
      done(null, parseJsonBody(body))
    } catch (err) {
      done(err as Error, undefined)
    }
  })
  // The schema compiled as Fastify would, by the function the workers use; bytes are checked there.
  const validate = compileFrameValidator()
  function validateBody (data: unknown): boolean {
    if (Buffer.isBuffer(data)) return true
    const valid = validate(data)
    validateBody.errors = validate.errors
    return valid
  }
  validateBody.errors = validate.errors

  fastify.post('/predictions', {
    bodyLimit: BODY_LIMIT,
    schema: {
      security: apiSecurity,
      tags: ['predictions'],
      summary: 'Classify flows',
      description: 'Takes CICFlowMeter flows as a pandas DataFrame in JSON split orientation ' +
        '(`DataFrame.to_json(orient="split")`) and answers one prediction per row, in order: 0 = benign, 1 = attack. ' +
        `Rows are numbered from 0 in error messages. At most ${MAX_ROWS} rows and ${BODY_LIMIT} bytes per request.`,
      consumes: [...PREDICTION_MEDIA_TYPES],
      body: Type.Ref(PandasSplitFrame),
      response: {
        200: Type.Ref(Predictions, { description: 'One prediction per row, in input order: 0 = benign, 1 = attack' }),
        ...errorResponses(400, 401, 413, 415, 429, 502, 503, 504),
      },
    },
    // Before the body is read: refuse what is not a JSON split frame without parsing it.
    onRequest: async (request) => {
      if (!isSupportedMediaType(request.headers['content-type'])) throw new UnsupportedMediaTypeError('')
    },
    // Before schema validation walks every cell: a frame over the row limit is refused at once.
    preValidation: async (request) => { checkRowCount(request.body, MAX_ROWS) },
    validatorCompiler: () => validateBody,
  }, async function (request) {
    const body: PandasSplitFrame | Buffer = request.body
    const started = performance.now()
    if (Buffer.isBuffer(body)) {
      const { predictions, messages } = await pool!.run(body, NOTIFY)
      const answer = Array.from(predictions) as Prediction[]
      request.classified = { messages, predictions: answer, seconds: (performance.now() - started) / 1000 }
      return answer
    }
    checkFrame(body)
    const predictions = await fastify.classifier.predict(body)
    request.classified = { frame: body, predictions, seconds: (performance.now() - started) / 1000 }
    return predictions
  })
}

export default routes
