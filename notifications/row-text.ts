/**
 * The client's own text of each row of a split frame, where reusing it is proven to announce what was
 * parsed: writing ~80 numbers anew (JSON.stringify) cost more than classifying the row.
 *
 * The proof has two halves:
 * - *Where.* The text is walked as JSON.parse reads it: the top-level object's keys in order, the
 *   last `data` key winning, its elements in order. A key with an escape (`"d\u0061ta"`) is not
 *   decoded here: the whole body then has no reusable rows. The walk must find as many rows as were
 *   parsed, or none is reused.
 * - *What.* A row is reused only when its text is a plain array (`PLAIN_ROW`): numbers, nulls and
 *   strings without a backslash, commas, no whitespace. That text is the very value JSON.parse read
 *   as the row, so it parses to the same values. A string without a backslash is written by
 *   JSON.stringify exactly as it stands (the text, decoded from UTF-8, holds no lone surrogate, and
 *   JSON.parse took no raw control character). The caller also requires (`restates`) every parsed
 *   number to be finite and not -0, which JSON.stringify writes back as themselves, so a row built
 *   from the text parses to exactly what one built with JSON.stringify parses to (`1e400`, parsed as
 *   Infinity, and `-0` are written anew).
 *
 * Numbers may be spelled otherwise than JSON.stringify would (`0.0`, `1E3`), never with another
 * value: pandas writes `0.0`. A longer spelling must not make a row too large to announce: a text is
 * reused only when its numbers average at most 25 characters (`restates`), and the input checks drop
 * the text of a row they had to measure exactly when it would not fit (dropRowText). Request grouping
 * may then split a class's rows into messages at other rows than it would for JSON.stringify's
 * spelling; the rows, their order and their labels are the same.
 *
 * These functions take a frame the schema and the input checks have passed (rows of numbers,
 * strings and nulls, as many as the columns).
 */

// One JSON number (RFC 8259's grammar), null, or a string without escapes.
const CELL = String.raw`(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|null|"[^"\\]*")`
/** A row of numbers, nulls and strings without escapes, and nothing else, at the position given (sticky). */
const PLAIN_ROW = new RegExp(String.raw`\[(?:${CELL}(?:,${CELL})*)?\]`, 'y')

/** The text each parsed body came from, by the parsed object: read when its notifications are built. */
const sources = new WeakMap<object, string>()

/** Keeps the text a body was parsed from, for rowTexts; anything but an object is not kept. */
export function rememberSource (parsed: unknown, text: string): void {
  if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) sources.set(parsed, text)
}

/**
 * Per row of the frame `parsed` was parsed as, its plain text (see above), or undefined where it is
 * not plain; undefined for the whole frame when its text is unknown (a CSV or MLflow body, a frame
 * built in code) or the walk cannot vouch for where each row is.
 */
export function rowTexts (frame: { data: readonly unknown[] }): ReadonlyArray<string | undefined> | undefined {
  let rows = found.get(frame)
  if (rows === undefined) {
    const text = sources.get(frame)
    if (text === undefined) return undefined
    const walked = dataRows(text)
    rows = walked !== undefined && walked.length === frame.data.length ? walked : []
    found.set(frame, rows)
  }
  return rows.length === frame.data.length ? rows : undefined
}

/** Each frame's row texts, found once (the input checks may ask before the notifications do). */
const found = new WeakMap<object, Array<string | undefined>>()

/** The row is written anew rather than reused: its text is larger than a message may carry (sizes.ts). */
export function dropRowText (frame: { data: readonly unknown[] }, row: number): void {
  const rows = found.get(frame)
  if (rows !== undefined && row < rows.length) rows[row] = undefined
}

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

function skipSpace (text: string, i: number): number {
  while (isSpace(text.charCodeAt(i))) i++
  return i
}

/** The rows of the top-level object's last `data` key, or undefined when the walk cannot vouch for them. */
function dataRows (text: string): Array<string | undefined> | undefined {
  let i = skipSpace(text, 0)
  if (text.charCodeAt(i) !== 0x7b) return undefined
  i = skipSpace(text, i + 1)
  if (text.charCodeAt(i) === 0x7d) return undefined
  let rows: Array<string | undefined> | undefined
  for (;;) {
    if (text.charCodeAt(i) !== 0x22) return undefined
    const keyEnd = text.indexOf('"', i + 1)
    if (keyEnd === -1) return undefined
    const key = text.slice(i + 1, keyEnd)
    // An escape: JSON.parse's key may be another (or `data` itself) than the text spells.
    if (key.includes('\\')) return undefined
    i = skipSpace(text, keyEnd + 1)
    if (text.charCodeAt(i) !== 0x3a) return undefined
    i = skipSpace(text, i + 1)
    let end: number
    if (key === 'data') {
      const array = elements(text, i)
      if (array === undefined) return undefined
      rows = array.rows
      end = array.end
    } else {
      end = valueEnd(text, i)
    }
    if (end === -1) return undefined
    i = skipSpace(text, end)
    const c = text.charCodeAt(i)
    if (c === 0x7d) return rows
    if (c !== 0x2c) return undefined
    i = skipSpace(text, i + 1)
  }
}

/** The elements of the array at `i`: each one's text when plain, else undefined; and where the array ends. */
function elements (text: string, i: number): { rows: Array<string | undefined>, end: number } | undefined {
  if (text.charCodeAt(i) !== 0x5b) return undefined
  const rows: Array<string | undefined> = []
  i = skipSpace(text, i + 1)
  if (text.charCodeAt(i) === 0x5d) return { rows, end: i + 1 }
  for (;;) {
    PLAIN_ROW.lastIndex = i
    if (PLAIN_ROW.test(text)) {
      rows.push(text.slice(i, PLAIN_ROW.lastIndex))
      i = PLAIN_ROW.lastIndex
    } else {
      const end = valueEnd(text, i)
      if (end === -1) return undefined
      rows.push(undefined)
      i = end
    }
    i = skipSpace(text, i)
    const c = text.charCodeAt(i)
    if (c === 0x5d) return { rows, end: i + 1 }
    if (c !== 0x2c) return undefined
    i = skipSpace(text, i + 1)
  }
}

/** A compact array of strings without escapes (a column list, as clients send it), at the position given (sticky). */
const PLAIN_STRINGS = /\[(?:"[^"\\]*"(?:,"[^"\\]*")*)?\]/y

/** Where the JSON value starting at `i` ends (text JSON.parse accepted), or -1. */
function valueEnd (text: string, i: number): number {
  const c = text.charCodeAt(i)
  if (c === 0x22) return stringEnd(text, i)
  if (c === 0x5b) {
    PLAIN_STRINGS.lastIndex = i
    if (PLAIN_STRINGS.test(text)) return PLAIN_STRINGS.lastIndex
  }
  if (c !== 0x5b && c !== 0x7b) {
    // A number or a literal: up to the next delimiter.
    while (i < text.length) {
      const d = text.charCodeAt(i)
      if (d === 0x2c || d === 0x5d || d === 0x7d || isSpace(d)) break
      i++
    }
    return i
  }
  let depth = 0
  for (; i < text.length; i++) {
    const d = text.charCodeAt(i)
    if (d === 0x22) {
      i = stringEnd(text, i) - 1
      if (i < 0) return -1
    } else if (d === 0x5b || d === 0x7b) {
      depth++
    } else if ((d === 0x5d || d === 0x7d) && --depth === 0) {
      return i + 1
    }
  }
  return -1
}

/** Where the string starting at `i` (its opening quote) ends, past its closing quote, or -1. */
function stringEnd (text: string, i: number): number {
  for (;;) {
    const quote = text.indexOf('"', i + 1)
    if (quote === -1) return -1
    // Escaped when an odd number of backslashes stands before it.
    let backslashes = 0
    while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++
    if (backslashes % 2 === 0) return quote + 1
    i = quote
  }
}

/** The longest text JSON.stringify writes for a number: `-0.0000010000000000000002`. */
export const LONGEST_NUMBER_TEXT = 25

/**
 * Whether a row's plain text may stand for the parsed row: no number in it infinite or -0 (whose text,
 * in any spelling, would not parse back to what JSON.stringify writes), and its numbers at most
 * LONGEST_NUMBER_TEXT characters on average, its strings being spelt exactly as JSON.stringify spells
 * them. So a reused text is at most 24 characters longer per number than the row written anew, and
 * within the input checks' bound on the row (sizes.ts, rowBound, which counts every number or null at
 * the same length), so it fits a message wherever the row was found to.
 */
export function restates (text: string, row: readonly unknown[]): boolean {
  // Brackets, and a comma after each cell but the last.
  let longest = 1
  for (let k = 0; k < row.length; k++) {
    const cell = row[k]
    if (typeof cell === 'string') {
      longest += cell.length + 3
    } else {
      if (typeof cell === 'number' && (!Number.isFinite(cell) || Object.is(cell, -0))) return false
      longest += LONGEST_NUMBER_TEXT + 1
    }
  }
  return text.length <= longest
}
