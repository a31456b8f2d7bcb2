import type { Config } from '../schemas/config.js'
import type { PandasSplitFrame, Prediction } from '../schemas/predictions.js'
import { escapedBytes, MAX_SQS_BODY_BYTES, sameStrings, SQS_ENVELOPE_FIXED_BYTES } from './sizes.js'
import { restates, rowTexts } from './row-text.js'

export type PredictionLabel = 'attack' | 'benign'

/** SNS's limit for one message, body plus attributes (names, types and values); a PublishBatch carries as much in all. */
export const MAX_PAYLOAD_BYTES = 256 * 1024
/** SNS's limit of entries per PublishBatch. */
export const MAX_BATCH_ENTRIES = 10

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
    /** Benign-predicted rows the unfamiliar-flow detector flagged (NOTIFY=unfamiliar): an SQS filter policy can route on it. */
    readonly unfamiliar?: 'true'
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
export const fitsOnTheWire = (n: Notification) => sized.has(n) || surelyFits(n) || (payloadBytes(n) <= MAX_PAYLOAD_BYTES && envelopeBytes(n) <= MAX_SQS_BODY_BYTES)

/**
 * Messages notificationsFor sized within the envelope's limit as it built them (an upper bound of the
 * envelope, which bounds SNS's count too: escaping and the envelope's attribute JSON only add), so a
 * request's 50 KB message is not escaped again to be measured. Objects, not copies: a message that
 * crossed from a worker thread or came back from the journal is measured.
 */
const sized = new WeakSet<Notification>()

/**
 * True when a notification fits whatever its characters: a UTF-16 unit takes at most 6 bytes escaped
 * (`\u001f`) and 3 in UTF-8, so most messages, far below the limits, are not measured exactly.
 */
function surelyFits (n: Notification): boolean {
  let units = n.message.length
  let names = 0
  for (const [name, value] of Object.entries(n.attributes)) {
    if (typeof value !== 'string') return false
    units += name.length + value.length
    names++
  }
  return 6 * units + names * '"":{"Type":"String","Value":""},'.length + '"MessageAttributes":{},'.length + SQS_ENVELOPE_FIXED_BYTES <= MAX_SQS_BODY_BYTES &&
    3 * units + names * 'Number'.length <= MAX_PAYLOAD_BYTES
}

const labelOf = (p: Prediction): PredictionLabel => p === 1 ? 'attack' : 'benign'

/**
 * A row with its prediction, as JSON: the parsed row written anew (JSON.stringify), or the client's
 * own text of it (`text`) where row-text.ts proves that parses to the same values (`restates`).
 * Either way the row announced is the row classified whatever the body's spelling (whitespace,
 * escapes, repeated keys) and a message holds no raw newline. `at` is the request's own `prediction`
 * column, whose value is replaced where it stands (pandas' `df["prediction"] = p`), or -1: appended.
 */
function rowWith (row: readonly unknown[], prediction: Prediction, at: number, text: string | undefined): string {
  if (at >= 0) {
    const copy = row.slice()
    copy[at] = prediction
    return JSON.stringify(copy)
  }
  if (row.length === 0) return `[${prediction}]`
  const json = text !== undefined && restates(text, row) ? text : JSON.stringify(row)
  return `${json.slice(0, -1)},${prediction}]`
}

// The last column list's JSON (with `prediction`) and its message head's escaped size: clients send
// the same ~80 names request after request, compared here rather than written and escaped again.
let lastNames: readonly string[] = []
let lastColumns: { columns: string, headBytes: number } | undefined

function columnsOf (names: readonly string[], at: number): { columns: string, headBytes: number } {
  if (lastColumns !== undefined && sameStrings(names, lastNames)) return lastColumns
  const columns = JSON.stringify(at >= 0 ? names : [...names, 'prediction'])
  lastColumns = { columns, headBytes: escapedBytes(`{"columns":${columns},"index":[`) }
  lastNames = names.slice()
  return lastColumns
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
export function notificationsFor (frame: PandasSplitFrame, predictions: readonly Prediction[], mode: NotifyMode, context: { model: string, requestId: string }, grouping: NotifyGrouping = 'row',
  unfamiliar?: ArrayLike<number>): Notification[] {
  if (mode === 'none') return []
  if (unfamiliar !== undefined) return withUnfamiliar(frame, predictions, mode, context, grouping, unfamiliar)
  // Without flags (a worker thread built these), NOTIFY=unfamiliar notifies what it is sure of: the attacks.
  if (mode === 'unfamiliar') mode = 'attacks'
  // A request that already has a `prediction` column (a frame that went through a model before) keeps
  // it in place with this model's values, as the earlier service's `df["prediction"] = preds` did.
  const at = frame.columns.indexOf('prediction')
  const { columns, headBytes } = columnsOf(frame.columns, at)
  const label = (i: number) => JSON.stringify(frame.index?.[i] ?? i)
  // A row's own text is reused only where it is appended to: a replaced `prediction` cell is written anew.
  const texts = at >= 0 ? undefined : rowTexts(frame)
  const out: Notification[] = []
  if (grouping === 'row') {
    for (let i = 0; i < predictions.length; i++) {
      const prediction = predictions[i]
      if (mode === 'attacks' && prediction !== 1) continue
      out.push({
        message: `{"columns":${columns},"index":[${label(i)}],"data":[${rowWith(frame.data[i], prediction, at, texts?.[i])}]}`,
        attributes: { prediction: labelOf(prediction), model: context.model, request_id: context.requestId },
      })
    }
    return out
  }
  for (const prediction of (mode === 'attacks' ? [1] : [0, 1]) as Prediction[]) {
    const head = `{"columns":${columns},"index":[`
    // Sized as the SQS envelope carries it (escaped), the stricter of the two limits; attributes with
    // the longest row count a message could have, so the estimate never falls short.
    const fixed = headBytes + '],"data":['.length + ']}'.length + SQS_ENVELOPE_FIXED_BYTES +
      envelopeAttributeBytes({ prediction: labelOf(prediction), model: context.model, request_id: context.requestId, rows: String(predictions.length) })
    let labels: string[] = []
    let rows: string[] = []
    let bytes = fixed
    const flush = () => {
      if (rows.length === 0) return
      const notification = {
        message: `${head}${labels.join(',')}],"data":[${rows.join(',')}]}`,
        attributes: { prediction: labelOf(prediction), model: context.model, request_id: context.requestId, rows: String(rows.length) },
      }
      if (bytes <= MAX_SQS_BODY_BYTES) sized.add(notification)
      out.push(notification)
      labels = []
      rows = []
      bytes = fixed
    }
    for (let i = 0; i < predictions.length; i++) {
      if (predictions[i] !== prediction) continue
      const l = label(i)
      const r = rowWith(frame.data[i], prediction, at, texts?.[i])
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

/**
 * NOTIFY=unfamiliar (or flags given with another mode): attacks as usual, and benign rows the detector flagged
 * (`unfamiliar[i]` 1) as messages of their own with attribute `unfamiliar=true`; other benign rows only with
 * NOTIFY=all. Built from notificationsFor on the subsets, so bodies and splitting are the same.
 */
function withUnfamiliar (frame: PandasSplitFrame, predictions: readonly Prediction[], mode: NotifyMode, context: { model: string, requestId: string },
  grouping: NotifyGrouping, unfamiliar: ArrayLike<number>): Notification[] {
  const flagged: number[] = []
  const familiar: number[] = []
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === 0) (unfamiliar[i] === 1 ? flagged : familiar).push(i)
  const subset = (rows: number[]): PandasSplitFrame => ({
    columns: frame.columns,
    index: rows.map(i => frame.index?.[i] ?? i),
    data: rows.map(i => frame.data[i]),
  })
  const benign = (rows: number[]) => rows.length === 0 ? [] : notificationsFor(subset(rows), rows.map(() => 0 as Prediction), 'all', context, grouping)
  return [
    ...notificationsFor(frame, predictions, 'attacks', context, grouping),
    ...benign(flagged).map(n => ({ ...n, attributes: { ...n.attributes, unfamiliar: 'true' as const } })),
    ...(mode === 'all' ? benign(familiar) : []),
  ]
}
