import type { PandasSplitFrame } from '../schemas/predictions.js'
import { InvalidInputError } from '../errors.js'
import { oversizedRow } from '../notifications/message.js'

// Clients send the same columns request after request: remember lists already found free of duplicates.
const UNIQUE_COLUMNS_CACHE_SIZE = 64
const uniqueColumns = new Set<string>()

let lastColumns: readonly string[] | undefined
let lastKey = ''
/**
 * A cache key for a list of column names. JSON, not a join: no two different lists share a key. The
 * frame check and the feature plan ask for the same list in turn, so the last answer is kept.
 */
export function columnsKey (columns: readonly string[]): string {
  if (columns !== lastColumns) {
    lastKey = JSON.stringify(columns)
    lastColumns = columns
  }
  return lastKey
}

/** Checks a schema-valid frame for what a schema cannot say: unique columns, rows as wide as the columns. */
export function checkFrame (frame: PandasSplitFrame): void {
  const key = columnsKey(frame.columns)
  if (!uniqueColumns.has(key)) {
    const seen = new Set<string>()
    const duplicates = new Set<string>()
    for (const column of frame.columns) (seen.has(column) ? duplicates : seen).add(column)
    if (duplicates.size > 0) throw new InvalidInputError(`duplicate column names: ${[...duplicates].join(', ')}`)
    if (uniqueColumns.size >= UNIQUE_COLUMNS_CACHE_SIZE) uniqueColumns.delete(uniqueColumns.values().next().value as string)
    uniqueColumns.add(key)
  }
  const width = frame.columns.length
  for (let r = 0; r < frame.data.length; r++) {
    if (frame.data[r].length !== width) {
      throw new InvalidInputError(`row ${r} has ${frame.data[r].length} values but there are ${width} columns`)
    }
  }
  if (frame.index !== undefined && frame.index.length !== frame.data.length) {
    throw new InvalidInputError(`index has ${frame.index.length} labels but data has ${frame.data.length} rows`)
  }
  // Every answered row must fit a notification of its own (notifications/message.ts).
  const oversized = oversizedRow(frame)
  if (oversized !== undefined) throw new InvalidInputError(oversized)
}

// The line of the file each row came from, for frames read from CSV. A symbol: never serialised,
// so a frame forwarded to SageMaker or echoed in notifications is the same as one sent as JSON.
const SOURCE_LINES = Symbol('source lines')

/** Attaches each row's line in the source file, so error messages can name lines instead of rows. */
export function withSourceLines<F extends PandasSplitFrame> (frame: F, lines: Int32Array): F {
  Object.defineProperty(frame, SOURCE_LINES, { value: lines, enumerable: false })
  return frame
}

/** How error messages name row `r` of a frame: `row 3` (JSON, from 0) or `line 5` (CSV, as an editor numbers it). */
export function rowName (frame: PandasSplitFrame, r: number): string {
  const lines = (frame as { [SOURCE_LINES]?: Int32Array })[SOURCE_LINES]
  return lines !== undefined && r < lines.length ? `line ${lines[r]}` : `row ${r}`
}
