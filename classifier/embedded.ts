import type { PandasSplitFrame, Prediction } from '../schemas/predictions.js'
import type { ModelInfo } from '../schemas/model.js'
import type { Explanation } from '../schemas/explanations.js'
import type { Classifier, Scored, WorkOptions } from './types.js'
import { fillFeatures, planFeatures, type FeaturePlan } from './features.js'
import { columnsKey, rowName } from './frame.js'
import type { LoadedModel } from './model.js'
import { createTreeExplainer, type TreeExplainer } from './treeshap.js'
import { ExplanationsUnavailableError } from '../errors.js'
import { UnsupportedModelError } from './xgboost.js'
import { NOVELTY_FILE, type NoveltyDetector } from './novelty.js'
import { createDriftMonitor, createDriftTally } from './drift.js'
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'

// Clients send the same columns request after request: remember a few plans rather than rebuild them.
const PLAN_CACHE_SIZE = 32
// Rows evaluated between yields to the event loop: about 3 ms of work on this project's 2-core
// benchmark machine, so a 10,000-row request does not hold up other clients (bench/model.ts measures it).
export const ROWS_PER_SLICE = 1000
// Rows explained between yields: TreeSHAP costs about 30x a prediction on the bundled model (12,000 rows/s), so about
// the same few milliseconds per slice (bench/model.ts measures it).
export const EXPLAIN_ROWS_PER_SLICE = 50

export interface EmbeddedOptions {
  /** ATTACK_THRESHOLD: replaces the model's own threshold. */
  threshold?: number
  /** NOVELTY_THRESHOLD: replaces the detector's own threshold. */
  noveltyThreshold?: number
  /** DRIFT_WINDOW_ROWS: measure drift over this many recent rows (0 or absent: not measured). */
  driftWindowRows?: number
  /** Count rows for drift without a window (a worker thread, which hands its counts to the main thread). */
  driftTally?: boolean
}

/**
 * The embedded backend: the model evaluated in this process by the pure-TypeScript XGBoost evaluator.
 * On the wire (`backend` in /api/model and /version, the metrics' `backend` label) it is `local`.
 */
export function createEmbeddedClassifier (model: LoadedModel, opts: EmbeddedOptions = {}) {
  const { metadata, booster, novelty } = model
  const threshold = opts.threshold ?? metadata.threshold
  const noveltyThreshold = novelty === undefined ? undefined : opts.noveltyThreshold ?? novelty.card.threshold
  const reference = novelty?.driftReference
  const drift = reference !== undefined && opts.driftWindowRows! > 0 ? createDriftMonitor(reference, metadata.features, opts.driftWindowRows!) : undefined
  const driftTally = reference !== undefined && opts.driftTally === true ? createDriftTally(reference, metadata.features) : undefined
  const counter = drift ?? driftTally
  const plans = new Map<string, FeaturePlan>()
  const features = new Float32Array(metadata.features.length)
  // A model file without node covers still predicts; only explanations are refused, saying why.
  let explainer: TreeExplainer | undefined
  let unexplainable = ''
  try {
    explainer = createTreeExplainer(booster.forest)
  } catch (err) {
    if (!(err instanceof UnsupportedModelError)) throw err
    unexplainable = err.message
  }
  const phi = new Float64Array(metadata.features.length)
  const byMagnitude = new Int32Array(metadata.features.length)

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

  /** Attack probabilities of rows [from, to) into `out`, and their unfamiliarity into `unfamiliarity` when given; synchronous, no allocation per row. */
  function evaluate (frame: PandasSplitFrame, plan: FeaturePlan, from: number, to: number, out: Float64Array, unfamiliarity?: Float64Array): void {
    const name = (r: number) => rowName(frame, r)
    for (let r = from; r < to; r++) {
      fillFeatures(frame.data[r], r, frame.columns, plan, features, name)
      out[r] = booster.predictProbability(features)
      counter?.observe(features)
      if (unfamiliarity !== undefined) unfamiliarity[r] = (novelty as NoveltyDetector).score(features)
    }
  }

  /** Explanations of rows [from, to) into `out`: the margin from the evaluator, the contributions from TreeSHAP. */
  function explainRows (frame: PandasSplitFrame, plan: FeaturePlan, from: number, to: number, top: number, out: Explanation[]): void {
    const shap = explainer as TreeExplainer
    const names = metadata.features
    for (let r = from; r < to; r++) {
      fillFeatures(frame.data[r], r, frame.columns, plan, features)
      const margin = booster.predictMargin(features)
      shap.explain(features, phi)
      for (let i = 0; i < byMagnitude.length; i++) byMagnitude[i] = i
      byMagnitude.sort((a, b) => Math.abs(phi[b]) - Math.abs(phi[a]) || a - b)
      const contributions: Record<string, number> = {}
      for (let k = 0; k < top; k++) contributions[names[byMagnitude[k]]] = phi[byMagnitude[k]]
      const score = 1 / (1 + Math.exp(-margin))
      out[r] = { prediction: score >= threshold ? 1 : 0, score, margin, bias: shap.bias, contributions }
      if (novelty !== undefined) {
        const unfamiliarity = novelty.score(features)
        out[r].novelty = unfamiliarity
        out[r].unfamiliar = unfamiliarity >= (noveltyThreshold as number)
      }
    }
  }

  /** Probabilities (and unfamiliarity into `unfamiliarity`) in slices of ROWS_PER_SLICE rows, yielding to other requests in between. */
  async function sliced (frame: PandasSplitFrame, signal?: AbortSignal, unfamiliarity?: Float64Array): Promise<Float64Array> {
    const plan = planFor(frame.columns)
    const rows = frame.data.length
    const p = new Float64Array(rows)
    for (let from = 0; from < rows; from += ROWS_PER_SLICE) {
      if (from > 0) await yieldToEventLoop()
      // The client has gone: the rest is work nobody will read.
      signal?.throwIfAborted()
      evaluate(frame, plan, from, Math.min(from + ROWS_PER_SLICE, rows), p, unfamiliarity)
    }
    return p
  }

  function labels (p: Float64Array): Prediction[] {
    const predictions = new Array<Prediction>(p.length)
    for (let r = 0; r < p.length; r++) predictions[r] = p[r] >= threshold ? 1 : 0
    return predictions
  }

  const info: ModelInfo = {
    backend: 'local',
    name: metadata.name,
    version: metadata.version,
    features: metadata.features,
    preprocessing: metadata.preprocessing,
    threshold,
    ...(threshold !== metadata.threshold ? { model_threshold: metadata.threshold } : {}),
    labels: metadata.labels,
    training: metadata.training,
    cv_metrics: metadata.cv_metrics,
    operating_points: metadata.operating_points,
    holdout_metrics: metadata.holdout_metrics,
    holdout_metrics_days_unseen: metadata.holdout_metrics_days_unseen,
    novelty: novelty === undefined
      ? { available: false, reason: `the model directory has no ${NOVELTY_FILE}: rows are not scored for unfamiliarity` }
      : { available: true, threshold: noveltyThreshold, card: novelty.card },
  }

  return {
    backend: 'local',
    threshold,
    noveltyThreshold,
    drift,
    driftTally,
    async predict (frame: PandasSplitFrame, opts: WorkOptions = {}): Promise<Prediction[]> {
      return labels(await sliced(frame, opts.signal))
    },
    async score (frame: PandasSplitFrame, opts: WorkOptions = {}): Promise<Scored> {
      const unfamiliarity = novelty === undefined ? undefined : new Float64Array(frame.data.length)
      const p = await sliced(frame, opts.signal, unfamiliarity)
      return {
        scores: Array.from(p),
        predictions: labels(p),
        ...(unfamiliarity === undefined ? {} : { novelty: Array.from(unfamiliarity) }),
      }
    },
    /** SHAP explanations in slices of EXPLAIN_ROWS_PER_SLICE rows, yielding to other requests in between. */
    async explain (frame: PandasSplitFrame, opts: { top?: number } & WorkOptions = {}): Promise<Explanation[]> {
      if (explainer === undefined) throw new ExplanationsUnavailableError(`this model cannot be explained: ${unexplainable}`)
      const plan = planFor(frame.columns)
      const rows = frame.data.length
      const top = Math.min(opts.top ?? Infinity, metadata.features.length)
      const out = new Array<Explanation>(rows)
      for (let from = 0; from < rows; from += EXPLAIN_ROWS_PER_SLICE) {
        if (from > 0) await yieldToEventLoop()
        opts.signal?.throwIfAborted()
        explainRows(frame, plan, from, Math.min(from + EXPLAIN_ROWS_PER_SLICE, rows), top, out)
      }
      return out
    },
    /** Benign rows flagged unfamiliar, for NOTIFY=unfamiliar: scored after the answer, so only benign rows cost a score. */
    ...(novelty === undefined
      ? {}
      : {
          flagUnfamiliar (frame: PandasSplitFrame, predictions: readonly Prediction[]): Uint8Array {
            const plan = planFor(frame.columns)
            const flags = new Uint8Array(predictions.length)
            for (let r = 0; r < predictions.length; r++) {
              if (predictions[r] !== 0) continue
              fillFeatures(frame.data[r], r, frame.columns, plan, features)
              flags[r] = novelty.score(features) >= (noveltyThreshold as number) ? 1 : 0
            }
            return flags
          },
        }),
    /** Predictions in one go, as 0/1 bytes: for worker threads, which have no one to yield to. */
    predictSync (frame: PandasSplitFrame): Uint8Array {
      const p = new Float64Array(frame.data.length)
      evaluate(frame, planFor(frame.columns), 0, p.length, p)
      const predictions = new Uint8Array(p.length)
      for (let r = 0; r < p.length; r++) predictions[r] = p[r] >= threshold ? 1 : 0
      return predictions
    },
    /** Probabilities, predictions (and unfamiliarity) in one go: for worker threads, as predictSync. */
    scoreSync (frame: PandasSplitFrame): { scores: Float64Array, predictions: Uint8Array, novelty?: Float64Array } {
      const unfamiliarity = novelty === undefined ? undefined : new Float64Array(frame.data.length)
      const p = new Float64Array(frame.data.length)
      evaluate(frame, planFor(frame.columns), 0, p.length, p, unfamiliarity)
      const predictions = new Uint8Array(p.length)
      for (let r = 0; r < p.length; r++) predictions[r] = p[r] >= threshold ? 1 : 0
      return { scores: p, predictions, ...(unfamiliarity === undefined ? {} : { novelty: unfamiliarity }) }
    },
    readiness: () => ({ ready: true }),
    describe: () => info,
    async close () {},
  } satisfies Classifier & { predictSync: unknown, scoreSync: unknown }
}
