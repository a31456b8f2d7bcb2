import type { PandasSplitFrame, Prediction } from '../schemas/predictions.js'
import type { ModelInfo } from '../schemas/model.js'
import type { Classifier } from './types.js'
import { columnsKey } from './frame.js'
import { fillFeatures, planFeatures, type FeaturePlan } from './features.js'
import type { LoadedModel } from './model.js'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'

// Clients send the same columns request after request: remember a few plans rather than rebuild them.
const PLAN_CACHE_SIZE = 32
// Rows evaluated between yields to the event loop: about 3 ms of work on this project's 2-core
// benchmark machine, so a 10,000-row request does not hold up other clients (bench/model.ts measures it).
export const ROWS_PER_SLICE = 1000

export function createLocalClassifier (model: LoadedModel) {
  const { metadata, booster } = model
  const plans = new Map<string, FeaturePlan>()
  const features = new Float32Array(metadata.features.length)

  function planFor (columns: readonly string[]): FeaturePlan {
    const key = columnsKey(columns)
    let plan = plans.get(key)
    if (plan === undefined) {
      plan = planFeatures(columns, metadata.features, metadata.preprocessing)
      if (plans.size >= PLAN_CACHE_SIZE) plans.delete(plans.keys().next().value as string)
      plans.set(key, plan)
    }
    return plan
  }

  /** Attack probabilities of rows [from, to) into `out`; synchronous, no allocation per row. */
  function evaluate (frame: PandasSplitFrame, plan: FeaturePlan, from: number, to: number, out: Float64Array): void {
    for (let r = from; r < to; r++) {
      fillFeatures(frame.data[r], r, frame.columns, plan, features)
      out[r] = booster.predictProbability(features)
    }
  }

  /** Attack probability of every row, in one go. */
  function probabilities (frame: PandasSplitFrame): Float64Array {
    const out = new Float64Array(frame.data.length)
    evaluate(frame, planFor(frame.columns), 0, frame.data.length, out)
    return out
  }

  const info: ModelInfo = {
    backend: 'local',
    name: metadata.name,
    version: metadata.version,
    features: metadata.features,
    preprocessing: metadata.preprocessing,
    threshold: metadata.threshold,
    labels: metadata.labels,
    training: metadata.training,
    cvMetrics: metadata.cv_metrics,
    holdoutMetrics: metadata.holdout_metrics,
  }

  return {
    backend: 'local',
    probabilities,
    /** Predictions in slices of ROWS_PER_SLICE rows, yielding to other requests in between. */
    async predict (frame: PandasSplitFrame): Promise<Prediction[]> {
      const plan = planFor(frame.columns)
      const rows = frame.data.length
      const p = new Float64Array(rows)
      for (let from = 0; from < rows; from += ROWS_PER_SLICE) {
        if (from > 0) await yieldToEventLoop()
        evaluate(frame, plan, from, Math.min(from + ROWS_PER_SLICE, rows), p)
      }
      const predictions = new Array<Prediction>(p.length)
      for (let r = 0; r < p.length; r++) predictions[r] = p[r] >= metadata.threshold ? 1 : 0
      return predictions
    },
    /** Predictions in one go, as 0/1 bytes: for worker threads, which have no one to yield to. */
    predictSync (frame: PandasSplitFrame): Uint8Array {
      const p = probabilities(frame)
      const predictions = new Uint8Array(p.length)
      for (let r = 0; r < p.length; r++) predictions[r] = p[r] >= metadata.threshold ? 1 : 0
      return predictions
    },
    readiness: () => ({ ready: true }),
    describe: () => info,
    async close () {},
  } satisfies Classifier & { probabilities: unknown, predictSync: unknown }
}
