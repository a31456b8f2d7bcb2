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
