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
  const columns = JSON.stringify([...frame.columns, 'prediction'])
  const out: Notification[] = []
  for (let i = 0; i < predictions.length; i++) {
    const prediction = predictions[i]
    if (mode === 'attacks' && prediction !== 1) continue
    const row = JSON.stringify(frame.data[i])
    const label = JSON.stringify(frame.index?.[i] ?? i)
    out.push({
      // The row's JSON with the prediction appended: no copy of the row array.
      message: `{"columns":${columns},"index":[${label}],"data":[${row.length > 2 ? row.slice(0, -1) + ',' : '['}${prediction}]]}`,
      attributes: { prediction: prediction === 1 ? 'attack' : 'benign', model: context.model, request_id: context.requestId },
    })
  }
  return out
}

/**
 * A frame's notification bodies built where the frame was parsed (a worker thread), for the rows
 * `mode` lets through: one string and where each body ends, cheap to send between threads.
 */
export interface PrebuiltMessages {
  readonly mode: 'all' | 'attacks'
  readonly text: string
  readonly ends: Uint32Array
}

export function prebuildMessages (frame: PandasSplitFrame, predictions: ArrayLike<number>, mode: 'all' | 'attacks'): PrebuiltMessages {
  const built = notificationsFor(frame, predictions as readonly Prediction[], mode, { model: '', requestId: '' })
  const ends = new Uint32Array(built.length)
  let end = 0
  for (let i = 0; i < built.length; i++) ends[i] = end += built[i].message.length
  return { mode, text: built.map(n => n.message).join(''), ends }
}

/** The notifications notificationsFor would give, from prebuilt bodies: `mode` must be within theirs. */
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
    if (mode === 'all' || prediction === 1) {
      out.push({
        message: prebuilt.text.slice(start, end),
        attributes: { prediction: prediction === 1 ? 'attack' : 'benign', model: context.model, request_id: context.requestId },
      })
    }
    start = end
  }
  return out
}
