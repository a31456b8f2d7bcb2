import { parse, type CsvError } from 'csv-parse'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import type { PandasSplitFrame } from '../schemas/predictions.js'
import { MAX_COLUMN_NAME_LENGTH, MAX_COLUMNS, MAX_STRING_CELL_LENGTH } from '../schemas/predictions.js'
import { InvalidInputError, TooManyRowsError } from './errors.js'
import { withSourceLines } from './frame.js'

// Characters parsed between yields to the event loop: about 1 ms of work on the project's 2-core
// machine, so a 6 MB file never holds other requests up for long (bench/csv.ts measures it).
export const CHARS_PER_SLICE = 64 * 1024

// What pandas.read_csv reads as NaN by default (its `na_values`), plus the infinities it reads as ±inf:
// the model treats both as missing, and pandas' to_json writes both as null.
const MISSING = new Set(['', '#N/A', '#N/A N/A', '#NA', '-1.#IND', '-1.#QNAN', '-NaN', '-nan', '1.#IND', '1.#QNAN', '<NA>',
  'N/A', 'NA', 'NULL', 'NaN', 'None', 'n/a', 'nan', 'null'])
const INFINITY = /^[+-]?(inf|infinity)$/i
// A decimal number as pandas reads one (no hex, no underscores, no bare dot).
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

/** One CSV cell as `pd.read_csv(...).to_json(orient="split")` would write it: a number, null, or the string. */
export function csvCell (raw: string): number | string | null {
  const cell = raw.trim()
  if (DECIMAL.test(cell)) {
    const value = Number(cell)
    return Number.isFinite(value) ? value : null
  }
  if (MISSING.has(cell) || INFINITY.test(cell)) return null
  return raw
}

export interface CsvOptions {
  /** Most data rows; one more is a 413. */
  maxRows: number
}

/**
 * A CICFlowMeter CSV (or any CSV with a header line) to the split frame the JSON route receives:
 * the same column names (original CICFlowMeter-V3 headers or snake_case: the model's feature plan
 * matches either), one row per flow, numbers as numbers, empty/NaN/Infinity cells as null, other
 * text (timestamps, addresses) as strings. Tolerates a UTF-8 BOM, CRLF or LF, blank lines, and the
 * header repeated inside the file (CICFlowMeter does that when files are concatenated). Every error
 * names the line of the file; the frame remembers each row's line, so later errors name it too.
 * Parses in slices, yielding to the event loop in between.
 */
export async function csvToFrame (text: string, opts: CsvOptions): Promise<PandasSplitFrame> {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  let columns: string[] | undefined
  let headerKey = ''
  const data: Array<Array<number | string | null>> = []
  const lines: number[] = []
  let failure: Error | undefined

  function onRecord (record: string[], line: number): void {
    if (columns === undefined) {
      columns = readHeader(record, line)
      headerKey = JSON.stringify(columns)
      return
    }
    // The header again (files concatenated): skipped. Checked on the first cell first, for speed.
    if (record[0].trim() === columns[0] && record.length === columns.length && JSON.stringify(record.map(name => name.trim())) === headerKey) return
    if (record.length !== columns.length) {
      throw new InvalidInputError(`line ${line} has ${record.length} values but the header has ${columns.length} columns`)
    }
    if (data.length >= opts.maxRows) throw new TooManyRowsError(`the file has more than ${opts.maxRows} rows (line ${line})`)
    const row = new Array<number | string | null>(record.length)
    for (let c = 0; c < record.length; c++) {
      const cell = csvCell(record[c])
      if (typeof cell === 'string' && cell.length > MAX_STRING_CELL_LENGTH) {
        throw new InvalidInputError(`line ${line}, column ${JSON.stringify(columns[c])}: a value longer than ${MAX_STRING_CELL_LENGTH} characters`)
      }
      row[c] = cell
    }
    data.push(row)
    lines.push(line)
  }

  const parser = parse({
    skip_empty_lines: true,
    relax_column_count: true,
    record_delimiter: ['\r\n', '\n', '\r'],
    on_record: (record: string[], context) => {
      if (failure !== undefined) return undefined
      try {
        onRecord(record, context.lines)
      } catch (err) {
        failure = err as Error
      }
      // Rows are collected above: nothing goes down the stream.
      return undefined
    },
  })
  parser.on('error', (err: CsvError & { lines?: number }) => {
    failure ??= new InvalidInputError(`line ${err.lines ?? '?'}: ${err.message.replace(/ at line \d+/, '')}`)
  })
  // The transform parses each write synchronously: one slice of work per turn of the event loop.
  for (let from = 0; from < text.length; from += CHARS_PER_SLICE) {
    if (failure !== undefined) break
    parser.write(text.slice(from, from + CHARS_PER_SLICE))
    await yieldToEventLoop()
  }
  if (failure === undefined) {
    await new Promise<void>(resolve => parser.end(resolve))
    await yieldToEventLoop()
  } else {
    parser.destroy()
  }
  if (failure !== undefined) throw failure
  if (columns === undefined) throw new InvalidInputError('the CSV is empty: send a header line, then one line per flow')
  return withSourceLines({ columns, data }, Int32Array.from(lines))
}

function readHeader (record: string[], line: number): string[] {
  const columns = record.map(name => name.trim())
  if (columns.length > MAX_COLUMNS) throw new InvalidInputError(`line ${line}: ${columns.length} columns, more than ${MAX_COLUMNS}`)
  const seen = new Set<string>()
  for (const name of columns) {
    if (name === '') throw new InvalidInputError(`line ${line}: the header has an empty column name`)
    if (name.length > MAX_COLUMN_NAME_LENGTH) throw new InvalidInputError(`line ${line}: a column name longer than ${MAX_COLUMN_NAME_LENGTH} characters`)
    if (seen.has(name)) throw new InvalidInputError(`line ${line}: duplicate column name ${JSON.stringify(name)}`)
    seen.add(name)
  }
  return columns
}
