import type { PandasSplitFrame, Prediction } from '../schemas/predictions.js'
import type { ModelInfo } from '../schemas/model.js'
import type { Explanation } from '../schemas/explanations.js'

/** `signal`: aborted when the client has gone; work waiting or running in slices stops with its reason. */
export interface WorkOptions {
  signal?: AbortSignal
}

/** What every backend offers the routes: predictions for validated rows, and a description. */
export interface Classifier {
  readonly backend: ModelInfo['backend']
  /** One prediction per row of `frame.data`, in order. Throws errors carrying a 4xx/5xx statusCode. */
  predict (frame: PandasSplitFrame, opts?: WorkOptions): Promise<Prediction[]>
  /** The attack probability of every row, and its prediction at `threshold`. Throws 501 when the backend only answers labels. */
  score (frame: PandasSplitFrame, opts?: WorkOptions): Promise<Scored>
  /** The attack probability at or above which a flow is an attack: ATTACK_THRESHOLD, else the model's. */
  readonly threshold: number
  /** Whether a prediction can be served now, and if not, why. */
  readiness (): { ready: boolean, reason?: string }
  describe (): ModelInfo
  /**
   * Per-row SHAP explanations (`top`: keep the N largest contributions), for backends that can
   * compute them; absent otherwise. Throws errors carrying a 4xx/5xx statusCode.
   */
  explain? (frame: PandasSplitFrame, opts?: { top?: number } & WorkOptions): Promise<Explanation[]>
  close (): Promise<void>
}

export interface Scored {
  scores: number[]
  predictions: Prediction[]
}
