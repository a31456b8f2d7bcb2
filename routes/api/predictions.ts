import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import createError from '@fastify/error'
import { Type } from '@sinclair/typebox'
import { checkFrame } from '../../classifier/frame.js'
import { apiSecurity, errorResponses } from '../../schemas/common.js'
import { PandasSplitFrame, PREDICTION_MEDIA_TYPES, Predictions } from '../../schemas/predictions.js'

const UnsupportedMediaTypeError = createError<[string]>('FST_ERR_CTP_INVALID_MEDIA_TYPE', '%s', 415)
const TooManyRowsError = createError<[number, number]>('TOO_MANY_ROWS', '%d rows exceed the limit of %d rows per request: split the frame', 413)

/**
 * `application/json`, optionally with `format=pandas-split` and `charset=utf-8`, in any case and spacing.
 * Other formats (records, columns...) are other bodies, so they are refused here rather than misread.
 */
export function isSupportedMediaType (header: string | undefined): boolean {
  if (header === undefined) return false
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
  const { BODY_LIMIT, MAX_ROWS } = fastify.config

  fastify.post('/predictions', {
    bodyLimit: BODY_LIMIT,
    schema: {
      operationId: 'predict',
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
        ...errorResponses(400, 401, 408, 413, 415, 429, 502, 503, 504),
      },
    },
    // Before the body is read: refuse what is not a JSON split frame without parsing it.
    onRequest: async (request) => {
      if (!isSupportedMediaType(request.headers['content-type'])) throw new UnsupportedMediaTypeError('')
    },
    // Before schema validation walks every cell: a frame over the row limit is refused at once.
    preValidation: async (request) => {
      const rows = (request.body as { data?: unknown })?.data
      if (Array.isArray(rows) && rows.length > MAX_ROWS) throw new TooManyRowsError(rows.length, MAX_ROWS)
    },
  }, async function (request) {
    checkFrame(request.body)
    const started = performance.now()
    const predictions = await fastify.classifier.predict(request.body)
    request.classified = { frame: request.body, predictions, seconds: (performance.now() - started) / 1000 }
    return predictions
  })
}

export default routes
