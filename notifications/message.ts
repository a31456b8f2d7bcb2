import type { PandasSplitFrame, Prediction } from '../schemas/predictions.js'

export type PredictionLabel = 'attack' | 'benign'

/** One row's notification: the body SNS carries and the attributes subscribers filter on. */
export interface Notification {
  /** `row_df.to_json(orient="split")` of the row with a `prediction` column added. */
  readonly message: string
  readonly attributes: {
    readonly prediction: PredictionLabel
    readonly model: string
    readonly request_id: string
  }
}

export type NotifyMode = 'all' | 'attacks' | 'none'

/**
 * The notifications for a classified frame, one per row that `mode` lets through. The body is what
 * pandas writes for the one-row frame `df.iloc[[i]].assign(prediction=p)`: the row keeps its index
 * label (its position when the request had no index), and `pandas.read_json(body, orient="split")`
 * reads it back.
 */
export function notificationsFor (frame: PandasSplitFrame, predictions: readonly Prediction[], mode: NotifyMode, context: { model: string, requestId: string }): Notification[] {
  if (mode === 'none') return []
  const head = messageHead(frame)
  const out: Notification[] = []
  for (let i = 0; i < predictions.length; i++) {
    const prediction = predictions[i]
    if (mode === 'attacks' && prediction !== 1) continue
    out.push(notification(head, rowPart(frame, i), prediction, context))
  }
  return out
}

// A message is head + row part + tail: the pieces are built by these functions wherever the frame is.
const messageHead = (frame: PandasSplitFrame) => `{"columns":${JSON.stringify([...frame.columns, 'prediction'])},"index":[`

/** The row's label and JSON with the prediction to append: no copy of the row array. */
function rowPart (frame: PandasSplitFrame, i: number): string {
  const row = JSON.stringify(frame.data[i])
  return `${JSON.stringify(frame.index?.[i] ?? i)}],"data":[${row.length > 2 ? row.slice(0, -1) + ',' : '['}`
}

const notification = (head: string, part: string, prediction: number, context: { model: string, requestId: string }): Notification => ({
  message: `${head}${part}${prediction}]]}`,
  attributes: { prediction: prediction === 1 ? 'attack' : 'benign', model: context.model, request_id: context.requestId },
})

/**
 * The pieces of a frame's notification bodies, built where the frame was parsed (a worker thread) for
 * the rows `mode` lets through: the columns once, and the rows' parts as one string with where each
 * ends, cheap to send between threads.
 */
export interface PrebuiltMessages {
  readonly mode: 'all' | 'attacks'
  readonly head: string
  readonly parts: string
  readonly ends: Uint32Array
}

export function prebuildMessages (frame: PandasSplitFrame, predictions: ArrayLike<number>, mode: 'all' | 'attacks'): PrebuiltMessages {
  const parts: string[] = []
  for (let i = 0; i < predictions.length; i++) if (mode === 'all' || predictions[i] === 1) parts.push(rowPart(frame, i))
  const ends = new Uint32Array(parts.length)
  let end = 0
  for (let i = 0; i < parts.length; i++) ends[i] = end += parts[i].length
  return { mode, head: messageHead(frame), parts: parts.join(''), ends }
}

/** The notifications notificationsFor would give, from prebuilt pieces: `mode` must be within theirs. */
export function notificationsFromMessages (prebuilt: PrebuiltMessages, predictions: readonly Prediction[], mode: NotifyMode, context: { model: string, requestId: string }): Notification[] {
  if (mode === 'none') return []
  if (mode === 'all' && prebuilt.mode !== 'all') throw new Error('notifications of every row asked of bodies built for attacks only')
  const out: Notification[] = []
  let m = 0
  let start = 0
  for (let i = 0; i < predictions.length; i++) {
    const prediction = predictions[i]
    if (prebuilt.mode === 'attacks' && prediction !== 1) continue
    const end = prebuilt.ends[m++]
    if (mode === 'all' || prediction === 1) out.push(notification(prebuilt.head, prebuilt.parts.slice(start, end), prediction, context))
    start = end
  }
  return out
}
