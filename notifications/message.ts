import type { Config } from '../schemas/config.js'
import type { PandasSplitFrame, Prediction } from '../schemas/predictions.js'

export type PredictionLabel = 'attack' | 'benign'

/** SNS's limit for one message, body plus attributes (names, types and values). */
export const MAX_PAYLOAD_BYTES = 256 * 1024

/** A notification: the body SNS carries and the attributes subscribers filter on. */
export interface Notification {
  /** A pandas split frame (`to_json(orient="split")`) of the rows with a `prediction` column (added, or replaced). */
  readonly message: string
  readonly attributes: {
    readonly prediction: PredictionLabel
    readonly model: string
    readonly request_id: string
    /** How many rows the message carries (request grouping only; a row message carries one). */
    readonly rows?: string
  }
}

/** NOTIFY and NOTIFY_GROUPING, as the configuration schema declares them. */
export type NotifyMode = Config['NOTIFY']
export type NotifyGrouping = Config['NOTIFY_GROUPING']

/** A notification's size as SNS counts it against its 256 KiB: body plus attribute names, types and values. */
export const payloadBytes = (n: Notification) => Buffer.byteLength(n.message) + attributeBytes(n.attributes)

function attributeBytes (attributes: Notification['attributes']): number {
  let sum = 0
  for (const [name, value] of Object.entries(attributes)) sum += name.length + (name === 'rows' ? 'Number' : 'String').length + Buffer.byteLength(value as string)
  return sum
}

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

/** A string's bytes once escaped as a JSON string, without its quotes: how the envelope carries text. */
const escapedBytes = (text: string) => Buffer.byteLength(JSON.stringify(text)) - 2

/** Attributes as the envelope writes them: `"name":{"Type":"String","Value":"..."},` each. */
function envelopeAttributeBytes (attributes: Notification['attributes']): number {
  let sum = '"MessageAttributes":{},'.length
  for (const [name, value] of Object.entries(attributes)) sum += escapedBytes(name) + escapedBytes(value as string) + '"":{"Type":"String","Value":""},'.length
  return sum
}

/** A notification's SQS body size, when an SQS queue subscribed to the topic receives it. */
export const envelopeBytes = (n: Notification) => escapedBytes(n.message) + envelopeAttributeBytes(n.attributes) + SQS_ENVELOPE_FIXED_BYTES

/**
 * Whether SNS takes a notification (256 KiB, body and attributes) and a queue at 256 KiB takes its
 * envelope. The envelope is the stricter bound (escaping only adds), so messages are sized by it.
 */
export const fitsOnTheWire = (n: Notification) => payloadBytes(n) <= MAX_PAYLOAD_BYTES && envelopeBytes(n) <= MAX_SQS_BODY_BYTES

/** Room for attributes when sizing a message before they are known (a model name, a request id, a count). */
const ATTRIBUTE_ALLOWANCE_BYTES = 1024

/**
 * Why a frame has a row that could not travel in a message of its own, or undefined: so that no
 * answered row ever needs more than one message, such a request is refused (400) before it is
 * answered. A quick upper bound per row first (every cell at its longest escaped spelling), the exact
 * size only for rows near the limit.
 */
export function oversizedRow (frame: PandasSplitFrame): string | undefined {
  const at = frame.columns.indexOf('prediction')
  const head = escapedBytes(`{"columns":${JSON.stringify(at >= 0 ? frame.columns : [...frame.columns, 'prediction'])},"index":[],"data":[]}`)
  const room = MAX_SQS_BODY_BYTES - SQS_ENVELOPE_FIXED_BYTES - ATTRIBUTE_ALLOWANCE_BYTES - head
  if (room <= 0) return `the column names take ${head} bytes, more than a notification can carry (${MAX_SQS_BODY_BYTES} bytes in all)`
  for (let r = 0; r < frame.data.length; r++) {
    const row = frame.data[r]
    let bound = 32 // the label (at most 256 characters is checked below) and the prediction
    for (const cell of row) bound += typeof cell === 'string' ? 7 * cell.length + 8 : 26
    const label = frame.index?.[r]
    if (typeof label === 'string') bound += 7 * label.length
    if (bound <= room) continue
    const exact = escapedBytes(JSON.stringify(row)) + escapedBytes(JSON.stringify(label ?? r)) + 4
    if (exact > room) return `row ${r} takes ${exact} bytes as JSON, more than one notification can carry (${room} bytes with these columns)`
  }
  return undefined
}

const labelOf = (p: Prediction): PredictionLabel => p === 1 ? 'attack' : 'benign'

/**
 * A row with its prediction, as JSON: the parsed row written anew (JSON.stringify), never the client's
 * text, so the row announced is the row classified whatever the body's spelling (whitespace, escapes,
 * repeated keys) and a message holds no raw newline. `at` is the request's own `prediction` column,
 * whose value is replaced where it stands (pandas' `df["prediction"] = p`), or -1: appended.
 */
function rowWith (row: readonly unknown[], prediction: Prediction, at: number): string {
  if (at >= 0) {
    const copy = row.slice()
    copy[at] = prediction
    return JSON.stringify(copy)
  }
  if (row.length === 0) return `[${prediction}]`
  const json = JSON.stringify(row)
  return `${json.slice(0, -1)},${prediction}]`
}

/**
 * The notifications for a classified frame, of the rows that `mode` lets through.
 *
 * - `row`: one per row, what pandas writes for `df.iloc[[i]].assign(prediction=p)` (the earlier
 *   service's format).
 * - `request`: one per prediction class present, `df.iloc[rows].assign(prediction=p)` of that class's
 *   rows, split into several messages where one would pass SNS's 256 KiB; attribute `rows` counts them.
 *
 * Rows keep their index label (their position when the request had no index), and
 * `pandas.read_json(body, orient="split")` reads every body back.
 */
export function notificationsFor (frame: PandasSplitFrame, predictions: readonly Prediction[], mode: NotifyMode, context: { model: string, requestId: string }, grouping: NotifyGrouping = 'row'): Notification[] {
  if (mode === 'none') return []
  // A request that already has a `prediction` column (a frame that went through a model before) keeps
  // it in place with this model's values, as the earlier service's `df["prediction"] = preds` did.
  const at = frame.columns.indexOf('prediction')
  const columns = JSON.stringify(at >= 0 ? frame.columns : [...frame.columns, 'prediction'])
  const label = (i: number) => JSON.stringify(frame.index?.[i] ?? i)
  const out: Notification[] = []
  if (grouping === 'row') {
    for (let i = 0; i < predictions.length; i++) {
      const prediction = predictions[i]
      if (mode === 'attacks' && prediction !== 1) continue
      out.push({
        message: `{"columns":${columns},"index":[${label(i)}],"data":[${rowWith(frame.data[i], prediction, at)}]}`,
        attributes: { prediction: labelOf(prediction), model: context.model, request_id: context.requestId },
      })
    }
    return out
  }
  for (const prediction of (mode === 'attacks' ? [1] : [0, 1]) as Prediction[]) {
    const head = `{"columns":${columns},"index":[`
    // Sized as the SQS envelope carries it (escaped), the stricter of the two limits; attributes with
    // the longest row count a message could have, so the estimate never falls short.
    const fixed = escapedBytes(head) + '],"data":['.length + ']}'.length + SQS_ENVELOPE_FIXED_BYTES +
      envelopeAttributeBytes({ prediction: labelOf(prediction), model: context.model, request_id: context.requestId, rows: String(predictions.length) })
    let labels: string[] = []
    let rows: string[] = []
    let bytes = fixed
    const flush = () => {
      if (rows.length === 0) return
      out.push({
        message: `${head}${labels.join(',')}],"data":[${rows.join(',')}]}`,
        attributes: { prediction: labelOf(prediction), model: context.model, request_id: context.requestId, rows: String(rows.length) },
      })
      labels = []
      rows = []
      bytes = fixed
    }
    for (let i = 0; i < predictions.length; i++) {
      if (predictions[i] !== prediction) continue
      const l = label(i)
      const r = rowWith(frame.data[i], prediction, at)
      // Two commas at most: one before the label, one before the row.
      const size = escapedBytes(l) + escapedBytes(r) + 2
      if (rows.length > 0 && bytes + size > MAX_SQS_BODY_BYTES) flush()
      labels.push(l)
      rows.push(r)
      bytes += size
    }
    flush()
  }
  return out
}
