import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import fp from 'fastify-plugin'
import { Type } from '@sinclair/typebox'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { csvToFrame } from './csv.js'
import { checkFlows, checkMlflowBody, checkSplitBody, mlflowFrame } from './body.js'
import { UnsupportedMediaTypeError } from '../errors.js'
import { projectRoot } from '../project.js'
import type { Config } from '../schemas/config.js'
import { MlflowRequest } from '../schemas/mlflow.js'
import { PandasSplitFrame, PREDICTION_MEDIA_TYPES } from '../schemas/predictions.js'

/**
 * What a flow route makes of a content-type header, in any case and spacing: `json` for
 * `application/json` (optionally `format=pandas-split`), `csv` for `text/csv`, both with
 * `charset=utf-8` allowed; undefined for anything else, which is a 415. JSON with another `format`
 * (records, columns...) is another body, so it is refused rather than misread.
 */
export function flowMediaType (header: string | undefined): 'json' | 'csv' | undefined {
  if (header === undefined) return undefined
  // Clients send one spelling request after request: remember the answers for a few.
  let kind = mediaTypes.get(header)
  if (kind === undefined) {
    kind = parseMediaType(header)
    if (mediaTypes.size >= MEDIA_TYPE_CACHE_SIZE) mediaTypes.delete(mediaTypes.keys().next().value as string)
    mediaTypes.set(header, kind)
  }
  return kind === 'unsupported' ? undefined : kind
}
const MEDIA_TYPE_CACHE_SIZE = 32
const mediaTypes = new Map<string, 'json' | 'csv' | 'unsupported'>()

function parseMediaType (header: string): 'json' | 'csv' | 'unsupported' {
  const [essence, ...params] = header.split(';').map(part => part.trim().toLowerCase())
  const kind = essence === 'application/json' ? 'json' : essence === 'text/csv' ? 'csv' : undefined
  if (kind === undefined) return 'unsupported'
  const ok = params.every(param => {
    if (param === '') return true
    const [key, value = ''] = param.split('=').map(part => part.trim().replace(/^"(.*)"$/, '$1'))
    if (key === 'format') return kind === 'json' && value === 'pandas-split'
    if (key === 'charset') return value === 'utf-8' || value === 'utf8'
    return true
  })
  return ok ? kind : 'unsupported'
}

const CsvBody = Type.String({
  description: 'CICFlowMeter CSV as written: a header line (original CICFlowMeter-V3 headers such as `Flow Byts/s`, or snake_case), ' +
    'then one line per flow. Extra columns (`Flow ID`, `Src IP`, `Timestamp`, `Label`...) are ignored; `Infinity`, `NaN` and empty ' +
    'cells are missing values; repeated header lines, blank lines, CRLF and a UTF-8 BOM are accepted. Errors name the line of the file.',
  // A real file, so that Swagger UI's "Try it out" answers 200 with CSV too.
  examples: [readFileSync(join(projectRoot(), 'examples', 'flows.csv'), 'utf8')],
})

/** The body schemas of a flow route, one per media type (the OpenAPI document shows each). */
const bodies = {
  split: Type.Ref(PandasSplitFrame),
  mlflow: Type.Ref(MlflowRequest),
}

export interface FlowInputOptions {
  /**
   * `split`: the JSON body is the split frame itself (`/api/*`); an MLflow-shaped body gets a 400
   * pointing to /invocations. `mlflow`: the JSON body is MLflow 2.x's (`dataframe_split`,
   * `dataframe_records`, `instances`, `inputs`), or a bare split frame as MLflow 1.x took it.
   */
  json: 'split' | 'mlflow'
}

/**
 * Route options for every route that takes flows, in one place: the body schema per media type, the
 * 415 rule, the row limit, and the conversion of every accepted body to the one internal frame (a
 * pandas split frame, schema-checked), which the handler reads with `framesOf(request)`.
 *
 * ```ts
 * fastify.post('/x', { ...flowInput(fastify.config), schema: { body: flowBody(), ... } }, async request => framesOf(request))
 * ```
 */
export function flowInput (config: Pick<Config, 'BODY_LIMIT' | 'MAX_ROWS'>, opts: FlowInputOptions = { json: 'split' }) {
  const { MAX_ROWS } = config
  return {
    bodyLimit: config.BODY_LIMIT,
    // Before the body is read: refuse what is neither JSON nor CSV without reading it. These hooks are
    // callback style (a throw is the hook's error): an async hook costs every request a promise.
    onRequest: (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
      const header = request.headers['content-type']
      if (flowMediaType(header) === undefined) {
        const given = header ? `unsupported content type ${JSON.stringify(header)}` : 'no content type'
        if (opts.json === 'split') throw new UnsupportedMediaTypeError(`${given}: send ${PREDICTION_MEDIA_TYPES.map(t => `"${t}"`).join(' or ')}`)
        throw new UnsupportedMediaTypeError(`${given}: send "application/json" with {"dataframe_split": {...}} (or dataframe_records, instances, inputs), or "text/csv"`)
      }
      // As MLflow 2.x's scoring server: parameters other than charset are refused, `format` included.
      if (opts.json === 'mlflow' && /;\s*format\s*=/i.test(header ?? '')) {
        throw new UnsupportedMediaTypeError('Unrecognized content type parameters: format. /invocations speaks MLflow 2.x\'s scoring protocol: ' +
          'send Content-Type: application/json with {"dataframe_split": {...}}, or text/csv')
      }
      done()
    },
    // Before schema validation walks every cell: an MLflow body sent to a split route is named as
    // such, and a frame over the row limit is refused at once.
    preValidation: (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
      const body = request.body
      // Bytes kept for a worker thread (plugins/app/worker-pool.ts) are checked there, by the same functions.
      if (typeof body === 'object' && body !== null && !Array.isArray(body) && !Buffer.isBuffer(body)) {
        if (opts.json === 'split') checkSplitBody(body, MAX_ROWS, request.url.split('?')[0])
        else checkMlflowBody(body, MAX_ROWS)
      }
      done()
    },
    // After validation: every body becomes the checked split frame the handler reads.
    preHandler: (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
      if (Buffer.isBuffer(request.body)) return done()
      if (typeof request.body === 'string') {
        const text = request.body
        request.hold(signal => csvToFrame(text, { maxRows: MAX_ROWS, signal })).then(frame => {
          checkFlows(frame)
          request.body = frame
        }).then(() => done(), done)
        return
      }
      const frame = opts.json === 'mlflow' ? mlflowFrame(request.body as MlflowRequest, MAX_ROWS) : request.body as PandasSplitFrame
      checkFlows(frame)
      request.body = frame
      done()
    },
  }
}

/** The `body` schema of a flow route: the JSON shape of `opts.json`, and CSV. */
export function flowBody (opts: FlowInputOptions = { json: 'split' }) {
  const json = bodies[opts.json === 'split' ? 'split' : 'mlflow']
  const content: Record<string, { schema: unknown }> = opts.json === 'split'
    ? { 'application/json; format=pandas-split': { schema: json }, 'application/json': { schema: json } }
    : { 'application/json': { schema: json } }
  content['text/csv'] = { schema: CsvBody }
  return { content }
}

/** The request's flows, as the flow input hooks left them: a checked split frame, whatever was sent. */
export const framesOf = (request: FastifyRequest): PandasSplitFrame => request.body as PandasSplitFrame

/**
 * Teaches the server to read `text/csv` bodies (as text, up to the route's body limit); routes that
 * take flows decide what to make of them through `flowInput`. Registered at the root, so routes in
 * any scope can take CSV.
 */
export default fp(async function flowInputPlugin (fastify) {
  fastify.addContentTypeParser('text/csv', { parseAs: 'string' }, (_request, body, done) => { done(null, body) })
}, { name: 'flow-input', dependencies: ['env'] })
