import type { PandasSplitFrame, Prediction } from '../schemas/predictions.js'
import type { ModelInfo } from '../schemas/model.js'
import type { Explanation } from '../schemas/explanations.js'
import type { DriftMonitor, DriftTally } from './drift.js'

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
  /** The unfamiliarity score at or above which a row is unfamiliar: NOVELTY_THRESHOLD, else the detector's; undefined without a detector. */
  readonly noveltyThreshold?: number | undefined
  /** Per-feature drift of the rows classified in this thread from the training data, when measured. */
  readonly drift?: DriftMonitor | undefined
  /** A worker thread's row counts for drift, taken after each body (the main thread merges them into `drift`). */
  readonly driftTally?: DriftTally | undefined
  /** 1 for each benign-predicted row the unfamiliar-flow detector flags, else 0; only with a detector. For NOTIFY=unfamiliar. */
  flagUnfamiliar? (frame: PandasSplitFrame, predictions: readonly Prediction[]): Uint8Array
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
  /** Each row's unfamiliarity score, when the model has a detector. */
  novelty?: number[]
}
