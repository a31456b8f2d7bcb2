import AjvCompiler from '@fastify/ajv-compiler'
import type { ErrorObject } from 'ajv'
import { Type } from '@sinclair/typebox'
import { errorCodes } from 'fastify'
import secureJson from 'secure-json-parse'
import { AJV_OPTIONS } from '../schemas/ajv.js'
import { PandasSplitFrame } from '../schemas/predictions.js'
import { InvalidInputError, JsonTooDeepError, MlflowBodyError, TooManyRowsError, ValidationError as BodyValidationError } from '../errors.js'
import { checkFrame } from '../classifier/frame.js'
import { oversizedRow } from '../notifications/sizes.js'
import { MLFLOW_FIELDS, mlflowRows, mlflowToFrame } from './mlflow.js'
import { rememberSource } from '../notifications/row-text.js'
import { MlflowRequest } from '../schemas/mlflow.js'

/**
 * A split-frame JSON body from bytes to a checked frame, as one sequence of pure steps. The main
 * thread runs them at their places in Fastify's request lifecycle (content-type parser, the
 * flow-input preValidation hook, validation, preHandler); a worker thread runs them in a row on large
 * bodies. Both give the same errors with the same messages, because they are these functions.
 */

/** A split frame nests 3 levels (the object, `data`, a row); anything much deeper is not one. */
export const MAX_JSON_DEPTH = 8

/**
 * Counts bracket depth in raw JSON bytes, across chunks, outside strings. UTF-8 continuation bytes are
 * all >= 0x80, so no byte of a multi-byte character can be taken for a bracket, a quote or a backslash.
 * Also counts the arrays and objects directly inside each list (rows of `data`, records, instances):
 * `rows()` is the most any list held, so a body of millions of empty rows is refused without JSON.parse.
 * `scan` answers false once the bytes nest deeper than `maxDepth`. One pass over the bytes, a few
 * milliseconds for 6 MB of any shape (bench/abuse.ts).
 */
export function shapeScanner (maxDepth: number) {
  let depth = 0
  let inString = false
  let escapePending = false // the last byte seen was a backslash inside a string
  // Per open container: whether it is a list, and how many arrays and objects it holds so far.
  const isList: boolean[] = [true]
  const children: number[] = [0]
  let rows = 0
  const scan = (chunk: Uint8Array): boolean => {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]
      if (inString) {
        if (escapePending) escapePending = false
        else if (c === 0x5c) escapePending = true
        else if (c === 0x22) inString = false
      } else if (c === 0x22) {
        inString = true
      } else if (c === 0x5b || c === 0x7b) {
        if (isList[depth] && ++children[depth] > rows) rows = children[depth]
        if (++depth > maxDepth) return false
        children[depth] = 0
        isList[depth] = c === 0x5b
      } else if (c === 0x5d || c === 0x7d) {
        depth--
      }
    }
    return true
  }
  return { scan, rows: () => rows }
}

/** Whether raw JSON bytes, given chunk by chunk, stay within `maxDepth` levels of nesting. */
export const depthScanner = (maxDepth: number) => shapeScanner(maxDepth).scan

// Fastify's defaults for the JSON parser: prototype poisoning is an error.
const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const

/**
 * Fastify's default JSON body parser, as a function: same result, same errors; first, nesting past
 * MAX_JSON_DEPTH is refused from a scan of the bytes. `depthChecked`: the main thread's bodies were
 * scanned as they arrived (plugins/app/bodies.ts); a worker's were not. The text is kept beside the
 * parsed object (rememberSource) until that is dropped.
 */
export function parseJsonBody (body: Buffer, opts: { depthChecked: boolean }): unknown {
  if (body.length === 0) throw new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY()
  if (!opts.depthChecked && !depthScanner(MAX_JSON_DEPTH)(body)) throw new JsonTooDeepError(MAX_JSON_DEPTH)
  const text = body.toString('utf8')
  let parsed: unknown
  try {
    parsed = secureJson.parse(text, undefined, PARSE_OPTIONS)
  } catch {
    throw new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY()
  }
  // Its notifications reuse the text of its rows where that is proven to say the same (row-text.ts).
  rememberSource(parsed, text)
  return parsed
}

/**
 * Before schema validation walks every cell, on a route that takes the split frame itself (`path`,
 * for the message): an MLflow scoring body is named as such, and a frame over the row limit is
 * refused at once.
 */
export function checkSplitBody (body: unknown, maxRows: number, path: string): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return
  const field = MLFLOW_FIELDS.find(name => name in body)
  if (field !== undefined && !('columns' in body)) {
    throw new MlflowBodyError(`this is an MLflow scoring body ({"${field}": ...}): ${path} takes the pandas split frame itself, ` +
      '{"columns": [...], "data": [[...], ...]} (DataFrame.to_json(orient="split")), or text/csv. MLflow clients can POST their body unchanged to /invocations')
  }
  checkRowCount((body as { data?: unknown }).data, maxRows)
}

/**
 * Before schema validation, on /invocations: a field MLflow 2.x does not know is named (validation
 * would drop it without a word), and a body over the row limit is refused at once.
 */
export function checkMlflowBody (body: unknown, maxRows: number): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return
  const unknown = Object.keys(body).filter(key => !(MLFLOW_FIELDS as readonly string[]).includes(key) && key !== 'params')
  if (unknown.length > 0) {
    throw new MlflowBodyError(`the body must have exactly one of ${MLFLOW_FIELDS.join(', ')}; it has ${unknown.join(', ')}` +
      ('columns' in body ? ': wrap a split frame as {"dataframe_split": {"columns": [...], "data": [...]}} (MLflow 2.x), or POST it bare to /api/predictions' : ''))
  }
  checkRowCount(mlflowRows(body), maxRows)
}

/** After validation, on /invocations: the MLflow body as the split frame, within the row limit. */
export function mlflowFrame (body: MlflowRequest, maxRows: number): PandasSplitFrame {
  const frame = mlflowToFrame(body)
  if (frame.data.length > maxRows) throw new TooManyRowsError(`${frame.data.length} rows exceed the limit of ${maxRows} rows per request`)
  return frame
}

/** Refuses a list of rows longer than the limit. */
export function checkRowCount (rows: unknown, maxRows: number): void {
  if (Array.isArray(rows) && rows.length > maxRows) throw new TooManyRowsError(`${rows.length} rows exceed the limit of ${maxRows} rows per request`)
}

/** The split frame's schema, compiled by the compiler and options Fastify uses for a route's body. */
export function compileFrameValidator () {
  const compile = AjvCompiler()({ PandasSplitFrame }, AJV_OPTIONS)
  return compile({ schema: Type.Ref(PandasSplitFrame), method: 'POST', url: '/api/predictions', httpPart: 'body' }) as
    ((data: unknown) => boolean) & { errors?: ErrorObject[] | null }
}

/** The MLflow body's schema, compiled as Fastify compiles /invocations' body. */
export function compileMlflowValidator () {
  const compile = AjvCompiler()({ PandasSplitFrame, MlflowRequest }, AJV_OPTIONS)
  return compile({ schema: Type.Ref(MlflowRequest), method: 'POST', url: '/invocations', httpPart: 'body' }) as
    ((data: unknown) => boolean) & { errors?: ErrorObject[] | null }
}

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

/** The client's message for the first schema error of a request part (`body`, `querystring`...). */
export function validationMessage (first: Pick<ErrorObject, 'instancePath' | 'keyword' | 'message' | 'params'>, context: string, body: unknown): string {
  const where = context === 'body' ? describePath(first.instancePath, body) : `${context}${first.instancePath}`
  const extra = first.params?.additionalProperty !== undefined ? `: ${String(first.params.additionalProperty)}` : ''
  const message = first.keyword === 'type' && /^\/data\/\d+\/\d+$/.test(first.instancePath)
    ? 'must be a number, a string or null'
    : first.message ?? 'is invalid'
  return `${where} ${message}${extra}`
}

/**
 * A frame's checks (classifier/frame.ts), and that every row can be announced: a row that could not
 * travel in a notification of its own is refused (400) before it is answered (notifications/sizes.ts).
 */
export function checkFlows (frame: PandasSplitFrame): void {
  checkFrame(frame)
  const oversized = oversizedRow(frame)
  if (oversized !== undefined) throw new InvalidInputError(oversized)
}

/** The whole sequence on raw bytes, as a worker runs it: parse, MLflow body and row limit, schema, frame checks. */
export function checkedFrame (bytes: Buffer, opts: { maxRows: number, path: string }, validate: ReturnType<typeof compileFrameValidator>): PandasSplitFrame {
  const body = parseJsonBody(bytes, { depthChecked: false })
  checkSplitBody(body, opts.maxRows, opts.path)
  if (!validate(body)) throw new BodyValidationError(validationMessage(validate.errors![0], 'body', body))
  checkFlows(body as PandasSplitFrame)
  return body as PandasSplitFrame
}

/** The same for an MLflow 2.x body (/invocations): parse, field and row checks, schema, to a frame, frame checks. */
export function checkedMlflowFrame (bytes: Buffer, opts: { maxRows: number }, validate: ReturnType<typeof compileMlflowValidator>): PandasSplitFrame {
  const body = parseJsonBody(bytes, { depthChecked: false })
  checkMlflowBody(body, opts.maxRows)
  if (!validate(body)) throw new BodyValidationError(validationMessage(validate.errors![0], 'body', body))
  const frame = mlflowFrame(body as MlflowRequest, opts.maxRows)
  checkFlows(frame)
  return frame
}
