import type { PandasSplitFrame } from '../schemas/predictions.js'
import { InvalidInputError } from '../errors.js'

// Clients send the same columns request after request: remember lists already found free of duplicates.
const UNIQUE_COLUMNS_CACHE_SIZE = 64
const uniqueColumns = new Set<string>()

let lastColumns: readonly string[] | undefined
let lastNames: readonly string[] = []
let lastKey = ''
/**
 * A cache key for a list of column names. JSON, not a join: no two different lists share a key. The
 * frame check and the feature plan ask for the same list in turn, so the last answer is kept.
 */
export function columnsKey (columns: readonly string[]): string {
  if (columns !== lastColumns) {
    // Each request parses its own array, usually of the same names: comparing them one by one costs a
    // fraction of writing ~80 names as JSON again.
    if (lastColumns === undefined || !sameStrings(columns, lastNames)) {
      lastKey = JSON.stringify(columns)
      lastNames = columns.slice()
    }
    lastColumns = columns
  }
  return lastKey
}

/** Whether two lists hold the same strings in the same order. */
function sameStrings (a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
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
