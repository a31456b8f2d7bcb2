import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import { ModelLoadError } from '../errors.js'
import { NoveltyFile, type DriftReference, type NoveltyCard } from '../schemas/novelty.js'
import { flattenTrees, marginOf } from './xgboost.js'

/**
 * The unfamiliar-flow detector shipped beside a model (`novelty.json`, written by training/novelty.py): an
 * isolation forest fitted on the model's benign training rows, exported as trees the XGBoost evaluator's
 * walker runs. Each leaf holds (depth + c(leaf samples)) / trees, so the forest's margin is the mean path
 * length, and the score is 2^(-mean path / c(sample size)) as in scikit-learn's `score_samples` (negated).
 */
export interface NoveltyDetector {
  /** The card: what it was fitted on, its threshold and how it was chosen (no trees). */
  readonly card: NoveltyCard
  /** The training distribution per feature that drift is measured against, when the file has one. */
  readonly driftReference: DriftReference | undefined
  /** Score of one row of preprocessed float32 features (NaN = missing), in (0, 1]: higher is less familiar. */
  score (features: Float32Array): number
}

export const NOVELTY_FILE = 'novelty.json'

/** Reads `<dir>/novelty.json` when there is one; undefined when there is none (the model serves without scores). */
export function loadNoveltyDetector (dir: string, features: readonly string[]): NoveltyDetector | undefined {
  const path = join(dir, NOVELTY_FILE)
  if (!existsSync(path)) return undefined
  let json: unknown
  try {
    json = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new ModelLoadError(`${path} cannot be read: ${(err as Error).message}`)
  }
  if (!Value.Check(NoveltyFile, json)) {
    const problems = [...Value.Errors(NoveltyFile, json)].slice(0, 3).map(e => `${e.path || '/'}: ${e.message}`)
    throw new ModelLoadError(`${path} is malformed: ${problems.join('; ')}`)
  }
  if (json.features.join() !== features.join()) {
    throw new ModelLoadError(`${path} and the model disagree on the features or their order`)
  }
  let margin: (x: Float32Array) => number
  try {
    margin = marginOf(flattenTrees({ trees: json.trees, numFeatures: features.length, baseMargin: 0, featureNames: undefined }))
  } catch (err) {
    throw new ModelLoadError(`${path}: ${(err as Error).message}`)
  }
  const { trees: _trees, drift_reference: driftReference, ...card } = json
  const scale = -1 / card.average_path_length
  return {
    card,
    driftReference,
    score: (x: Float32Array): number => 2 ** (margin(x) * scale),
  }
}
