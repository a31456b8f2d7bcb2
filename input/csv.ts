import Papa from 'papaparse'
import type { PandasSplitFrame } from '../schemas/predictions.js'
import { MAX_COLUMN_NAME_LENGTH, MAX_COLUMNS, MAX_STRING_CELL_LENGTH } from '../schemas/predictions.js'
import { InvalidInputError, TooManyRowsError } from '../errors.js'
import { withSourceLines } from '../classifier/frame.js'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'

// Records with content (rows, repeated headers) parsed between yields to the event loop: about 2 ms of
// work on the project's 2-core machine, so a 6 MB file never holds other requests up for long
// (bench/csv.ts measures it). Blank lines count by their characters (PARSE_CHARS_PER_SLICE).
export const ROWS_PER_SLICE = 250
// Characters the line-width scan reads between yields (a few milliseconds).
const SCAN_CHARS_PER_SLICE = 256 * 1024
// Characters parsed between yields however short the records are: 64 KB of blank lines is ~2 ms.
const PARSE_CHARS_PER_SLICE = 64 * 1024

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
  /** Aborted when the client has gone: parsing stops at the next slice. */
  signal?: AbortSignal
}

/**
 * A CICFlowMeter CSV (or any CSV with a header line) to the split frame the JSON route receives:
 * the same column names (original CICFlowMeter-V3 headers or snake_case: the model's feature plan
 * matches either), one row per flow, numbers as numbers, empty/NaN/Infinity cells as null, other
 * text (timestamps, addresses) as strings. Tolerates a UTF-8 BOM, CRLF or LF, blank lines, and the
 * header repeated inside the file (CICFlowMeter does that when files are concatenated). Every error
 * names the line of the file; the frame remembers each row's line, so later errors name it too.
 * Parses with papaparse (bench/csv.md says why), in slices of rows, yielding to the event loop in between.
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

  // Before papaparse builds any record: no line may have more fields than a header may have columns,
  // so a line of millions of commas is refused before it becomes an array of millions of strings.
  // Each slice is parsed on its own, so the line ending is found once, here, not guessed per slice.
  const newline = /\r\n|\n|\r/.exec(text)?.[0] ?? '\n'
  const slices = await sliceRecords(text, MAX_COLUMNS, opts.signal, newline === '\r' ? 0x0d : 0x0a)
  // No quote in the file (CICFlowMeter writes none): no field holds a line break, and a row's line is
  // one more than the last. Otherwise line breaks inside quoted fields are counted.
  const quoted = text.includes('"')
  let line = 1
  for (let s = 0; s < slices.length && failure === undefined; s++) {
    const slice = slices[s]
    // Blank lines only: nothing to parse (a file of millions of them costs the scan alone).
    if (slice.blank) continue
    if (s > 0) {
      // A slice of records per turn of the event loop; none for a client that went.
      await yieldToEventLoop()
      opts.signal?.throwIfAborted()
    }
    line = slice.line
    // The slice ends before the line break that ends its last record.
    let end = slice.end
    if (end > slice.start && text.charCodeAt(end - 1) === 0x0a) end--
    if (end > slice.start && text.charCodeAt(end - 1) === 0x0d) end--
    Papa.parse<string[]>(text.slice(slice.start, end), {
      delimiter: ',',
      newline: newline as '\n',
      // Blank lines come through as [''] and are skipped below, so that lines are counted right.
      skipEmptyLines: false,
      step: (results, parser) => {
        const record = results.data
        const at = line
        line += 1
        if (quoted) for (const field of record) for (let i = field.indexOf('\n'); i !== -1; i = field.indexOf('\n', i + 1)) line++
        if (failure !== undefined) return
        if (results.errors.length > 0) {
          failure = new InvalidInputError(`line ${at}: ${results.errors[0].message}`)
          parser.abort()
          return
        }
        try {
          if (!(record.length === 1 && record[0].trim() === '')) onRecord(record, at)
        } catch (err) {
          failure = err as Error
          parser.abort()
        }
      },
    })
  }
  if (failure !== undefined) throw failure
  if (columns === undefined) throw new InvalidInputError('the CSV is empty: send a header line, then one line per flow')
  return withSourceLines({ columns, data }, Int32Array.from(lines))
}

/**
 * Where the parser's slices start: after a line break outside quotes, every ROWS_PER_SLICE records
 * with content or PARSE_CHARS_PER_SLICE characters (blank lines), whichever comes first; the text's length
 * ends the list. On the way, refuses (400, naming the line) the first record with more than
 * `maxColumns` fields, so a line of millions of commas never becomes an array of millions of strings.
 * Reads the text in slices with the event loop free in between. Commas inside quoted fields do not
 * separate, line breaks inside them do not end the record; lines are counted as the parser counts them.
 * `lineBreak`: the character that ends a line (\n, or \r in a file with classic Mac line endings).
 */
export async function sliceRecords (text: string, maxColumns: number, signal?: AbortSignal, lineBreak = 0x0a): Promise<Slice[]> {
  const slices: Slice[] = []
  let start = 0
  let startLine = 1
  let sliceContent = false
  let line = 1
  let recordLine = 1
  let fields = 1
  let records = 0
  let content = false
  let inQuotes = false
  for (let from = 0; from < text.length; from += SCAN_CHARS_PER_SLICE) {
    if (from > 0) {
      await yieldToEventLoop()
      signal?.throwIfAborted()
    }
    const to = Math.min(text.length, from + SCAN_CHARS_PER_SLICE)
    for (let i = from; i < to; i++) {
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        inQuotes = !inQuotes
        content = true
      } else if (c === lineBreak) {
        line++
        if (!inQuotes) {
          fields = 1
          recordLine = line
          if (content) sliceContent = true
          if ((content && ++records === ROWS_PER_SLICE) || i + 1 - start >= PARSE_CHARS_PER_SLICE) {
            slices.push({ start, end: i + 1, line: startLine, blank: !sliceContent })
            records = 0
            start = i + 1
            startLine = line
            sliceContent = false
          }
          content = false
        }
      } else if (c === 0x2c) {
        content = true
        if (!inQuotes && ++fields > maxColumns) throw new InvalidInputError(`line ${recordLine}: more than ${maxColumns} values (at most ${maxColumns} columns)`)
      } else if (c !== 0x20 && c !== 0x0d && c !== 0x0a && c !== 0x09) {
        content = true
      }
    }
  }
  if (start < text.length) slices.push({ start, end: text.length, line: startLine, blank: !(sliceContent || content || inQuotes) })
  return slices
}

/** A run of whole records: where it starts and ends in the text, its first line, and whether it is only blank lines. */
export interface Slice { start: number, end: number, line: number, blank: boolean }

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
