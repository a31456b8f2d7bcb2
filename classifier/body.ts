import createError from '@fastify/error'
import AjvCompiler from '@fastify/ajv-compiler'
import type { ErrorObject } from 'ajv'
import { Type } from '@sinclair/typebox'
import { errorCodes } from 'fastify'
import secureJson from 'secure-json-parse'
import { AJV_OPTIONS } from '../schemas/ajv.js'
import { PandasSplitFrame } from '../schemas/predictions.js'
import { checkFrame } from './frame.js'

/**
 * A predictions body from bytes to a checked frame, as one sequence of pure steps. The main thread
 * runs them at their places in Fastify's request lifecycle (content-type parser, preValidation,
 * validation, handler); a worker thread runs them in a row on large bodies. Both give the same
 * errors with the same messages, because they are these functions.
 */

export const TooManyRowsError = createError<[number, number]>('TOO_MANY_ROWS', '%d rows exceed the limit of %d rows per request: split the frame', 413)
/** A body the schema refuses, its message already naming the row and column (see validationMessage). */
export const BodyValidationError = createError<[string]>('VALIDATION_ERROR', '%s', 400)

// Fastify's defaults for the JSON parser: prototype poisoning is an error.
const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const

/** Fastify's default JSON body parser, as a function: same result, same errors. */
export function parseJsonBody (body: Buffer | string): unknown {
  if (body.length === 0) throw new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY()
  try {
    return secureJson.parse(body, undefined, PARSE_OPTIONS)
  } catch {
    throw new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY()
  }
}

/** Before schema validation walks every cell: a frame over the row limit is refused at once. */
export function checkRowCount (body: unknown, maxRows: number): void {
  const rows = (body as { data?: unknown })?.data
  if (Array.isArray(rows) && rows.length > maxRows) throw new TooManyRowsError(rows.length, maxRows)
}

/** The route's body schema, compiled by the compiler and options Fastify uses for it. */
export function compileFrameValidator () {
  const compile = AjvCompiler()({ PandasSplitFrame }, AJV_OPTIONS)
  return compile({ schema: Type.Ref(PandasSplitFrame), method: 'POST', url: '/api/predictions', httpPart: 'body' }) as
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

/** The whole sequence on raw bytes, as a worker runs it: parse, row limit, schema, frame checks. */
export function checkedFrame (bytes: Buffer, maxRows: number, validate: ReturnType<typeof compileFrameValidator>): PandasSplitFrame {
  const body = parseJsonBody(bytes)
  checkRowCount(body, maxRows)
  if (!validate(body)) throw new BodyValidationError(validationMessage(validate.errors![0], 'body', body))
  checkFrame(body as PandasSplitFrame)
  return body as PandasSplitFrame
}
