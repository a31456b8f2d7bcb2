import type { PandasSplitFrame, Prediction } from '../schemas/predictions.js'
import type { ModelInfo } from '../schemas/model.js'
import type { Classifier } from './types.js'
import { fillFeatures, planFeatures, type FeaturePlan } from './features.js'
import type { LoadedModel } from './model.js'

// Clients send the same columns request after request: remember a few plans rather than rebuild them.
const PLAN_CACHE_SIZE = 32

export function createLocalClassifier (model: LoadedModel) {
  const { metadata, booster } = model
  const plans = new Map<string, FeaturePlan>()
  const features = new Float32Array(metadata.features.length)

  function planFor (columns: readonly string[]): FeaturePlan {
    const key = columns.join('\u0000')
    let plan = plans.get(key)
    if (plan === undefined) {
      plan = planFeatures(columns, metadata.features, metadata.preprocessing)
      if (plans.size >= PLAN_CACHE_SIZE) plans.delete(plans.keys().next().value as string)
      plans.set(key, plan)
    }
    return plan
  }

  /** Attack probability of every row; synchronous, no allocation per row. */
  function probabilities (frame: PandasSplitFrame): Float64Array {
    const plan = planFor(frame.columns)
    const out = new Float64Array(frame.data.length)
    for (let r = 0; r < frame.data.length; r++) {
      fillFeatures(frame.data[r], r, frame.columns, plan, features)
      out[r] = booster.predictProbability(features)
    }
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
    async predict (frame: PandasSplitFrame): Promise<Prediction[]> {
      const p = probabilities(frame)
      const predictions = new Array<Prediction>(p.length)
      for (let r = 0; r < p.length; r++) predictions[r] = p[r] >= metadata.threshold ? 1 : 0
      return predictions
    },
    readiness: () => ({ ready: true }),
    describe: () => info,
    async close () {},
  } satisfies Classifier & { probabilities: unknown }
}
