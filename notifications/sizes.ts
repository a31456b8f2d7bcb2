import type { PandasSplitFrame } from '../schemas/predictions.js'
import { dropRowText, LONGEST_NUMBER_TEXT, rowTexts } from './row-text.js'

// How large an announcement may be, apart from how messages are built (message.ts): the input checks
// (input/body.ts) refuse a row that could not travel in a message of its own, before it is answered.

/**
 * What a subscriber queue left at SQS's old 256 KiB limit takes: SNS delivers to SQS inside a JSON
 * envelope, the message escaped as a JSON string beside its attributes, ids, signature and URLs.
 */
export const MAX_SQS_BODY_BYTES = 262_144
/**
 * The envelope's bytes besides the message and its attributes, with room to spare: Type, MessageId,
 * TopicArn (up to 256 characters), Timestamp, SignatureVersion, Signature (344-684 characters),
 * SigningCertURL, UnsubscribeURL (the ARN again plus a subscription id) and the JSON punctuation.
 */
export const SQS_ENVELOPE_FIXED_BYTES = 2048

// A character JSON.stringify escapes, or one of more than a byte in UTF-8 (DEL too, to keep the class simple).
// eslint-disable-next-line no-control-regex
const ESCAPED_OR_WIDE = /["\\\u0000-\u001f\u007f-\uffff]/
// The same but the quote, the one such character of plain rows and column lists.
// eslint-disable-next-line no-control-regex
const ESCAPED_OR_WIDE_BUT_QUOTES = /[\\\u0000-\u001f\u007f-\uffff]/

/**
 * A string's bytes once escaped as a JSON string, without its quotes: how the envelope carries text.
 * Printable ASCII (a row, a label, a column list) is its own length plus a backslash per quote, found
 * with searches instead of writing the escaped copy.
 */
export function escapedBytes (text: string): number {
  if (!ESCAPED_OR_WIDE.test(text)) return text.length
  if (ESCAPED_OR_WIDE_BUT_QUOTES.test(text)) return Buffer.byteLength(JSON.stringify(text)) - 2
  let bytes = text.length
  for (let at = text.indexOf('"'); at !== -1; at = text.indexOf('"', at + 1)) bytes++
  return bytes
}

/** Room for attributes when sizing a message before they are known (a model name, a request id, a count). */
const ATTRIBUTE_ALLOWANCE_BYTES = 1024

// The last column list sized and its head's bytes: clients send the same columns request after request.
let lastColumns: readonly string[] = []
let lastHeadBytes = -1

/** A message's bytes besides its rows, for these columns: the frame's head, escaped as the envelope carries it. */
function headBytes (columns: readonly string[]): number {
  if (lastHeadBytes >= 0 && sameStrings(columns, lastColumns)) return lastHeadBytes
  const at = columns.indexOf('prediction')
  lastHeadBytes = escapedBytes(`{"columns":${JSON.stringify(at >= 0 ? columns : [...columns, 'prediction'])},"index":[],"data":[]}`)
  lastColumns = columns.slice()
  return lastHeadBytes
}

/** Whether two lists hold the same strings in the same order. */
export function sameStrings (a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * An upper bound of a row's bytes as JSON, escaped as the envelope carries it, cell by cell: a
 * number or null at most LONGEST_NUMBER_TEXT and a comma, a string at most 7 per character
 * (`\u001f` escaped again) and 8 more.
 */
function rowBound (row: readonly unknown[]): number {
  let bound = 2
  for (const cell of row) bound += typeof cell === 'string' ? 7 * cell.length + 8 : LONGEST_NUMBER_TEXT + 1
  return bound
}

/**
 * Why a frame (one the schema passed: cells are numbers, strings or nulls, as many as the columns) has
 * a row that could not travel in a message of its own, or undefined: so that no
 * answered row ever needs more than one message, such a request is refused (400) before it is
 * answered. A quick upper bound per row first (every cell at its longest escaped spelling), the exact
 * size only for rows near the limit.
 */
export function oversizedRow (frame: PandasSplitFrame): string | undefined {
  const head = headBytes(frame.columns)
  const room = MAX_SQS_BODY_BYTES - SQS_ENVELOPE_FIXED_BYTES - ATTRIBUTE_ALLOWANCE_BYTES - head
  if (room <= 0) return `the column names take ${head} bytes, more than a notification can carry (${MAX_SQS_BODY_BYTES} bytes in all)`
  for (let r = 0; r < frame.data.length; r++) {
    const row = frame.data[r]
    // The label (at most 256 characters is checked below) and the prediction.
    let bound = 30 + rowBound(row)
    const label = frame.index?.[r]
    if (typeof label === 'string') bound += 7 * label.length
    // A reused row text is within rowBound too (row-text.ts, restates), so it fits where this says the row does.
    if (bound <= room) continue
    const labelBytes = escapedBytes(JSON.stringify(label ?? r)) + 4
    const exact = escapedBytes(JSON.stringify(row)) + labelBytes
    if (exact > room) return `row ${r} takes ${exact} bytes as JSON, more than one notification can carry (${room} bytes with these columns)`
    // Past the bound the client's spelling may not fit where JSON.stringify's does: then it is written anew.
    const text = rowTexts(frame)?.[r]
    if (text !== undefined && escapedBytes(text) + labelBytes > room) dropRowText(frame, r)
  }
  return undefined
}
