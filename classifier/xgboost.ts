/**
 * Evaluates XGBoost's JSON model format (`Booster.save_model("model.json")`) for `binary:logistic`.
 *
 * Exact to XGBoost: thresholds and feature values are float32 (XGBoost compares in float, and integers
 * such as flow_duration ~1.2e8 round differently in doubles), NaN is missing and follows each node's
 * default direction, and base_score is turned into a margin. Trees are flattened into typed arrays so
 * that a prediction walks memory without allocating.
 */

export class UnsupportedModelError extends Error {
  override name = 'UnsupportedModelError'
}

export interface XGBoostModel {
  /** Number of features the trees index into. */
  readonly numFeatures: number
  readonly numTrees: number
  /** Feature names stored in the model file, when it was trained with them. */
  readonly featureNames: readonly string[] | undefined
  /** Probability of the positive class for one row of float32 features (NaN = missing). */
  predictProbability (features: Float32Array): number
  /** The margin (log-odds) for one row: base margin plus the leaves reached. */
  predictMargin (features: Float32Array): number
  /** The flattened trees the evaluator walks, for other algorithms on the same model (TreeSHAP). */
  readonly forest: Forest
}

/**
 * All trees' nodes in flat arrays; tree t starts at node `roots[t]`. A leaf has `left === -1` and
 * its value in `leaf`. `cover` is each node's `sum_hessian` (float32), when the model file has it.
 */
export interface Forest {
  readonly roots: Int32Array
  readonly left: Int32Array
  readonly right: Int32Array
  readonly feature: Int32Array
  readonly threshold: Float32Array
  readonly defaultLeft: Uint8Array
  readonly leaf: Float64Array
  readonly cover: Float64Array | undefined
  /** base_score as a margin (log-odds). */
  readonly baseMargin: number
  readonly numFeatures: number
}

interface JsonTree {
  left_children: number[]
  right_children: number[]
  split_indices: number[]
  split_conditions: number[]
  default_left: Array<number | boolean>
  split_type?: number[]
  categories_nodes?: number[]
  sum_hessian?: number[]
}

function fail (message: string): never {
  throw new UnsupportedModelError(message)
}

/** "5E-1" (XGBoost 1.x/2.x) or "[5E-1]" (3.x) to a number. */
export function parseBaseScore (raw: unknown): number {
  const text = String(raw ?? '0.5').trim().replace(/^\[(.*)\]$/, '$1')
  if (text.includes(',')) fail(`base_score ${text} has several values: multi-target models are not supported`)
  const value = Number(text)
  if (!Number.isFinite(value) || value <= 0 || value >= 1) fail(`base_score ${String(raw)} is not a probability in (0, 1)`)
  return value
}

/** The parts of a model file the evaluator uses, once checked: a binary:logistic gbtree with numeric splits. */
interface CheckedModel {
  trees: JsonTree[]
  numFeatures: number
  baseMargin: number
  featureNames: string[] | undefined
}

/** Checks the learner's kind and parameters; the trees' shapes are checked as they are flattened. */
export function checkLearner (json: unknown): CheckedModel {
  const learner = (json as { learner?: Record<string, any> })?.learner
  if (learner == null || typeof learner !== 'object') fail('not an XGBoost JSON model: no "learner" object')

  const objective = learner.objective?.name
  if (objective !== 'binary:logistic') fail(`objective ${String(objective)} is not supported: only binary:logistic`)
  const params = learner.learner_model_param ?? {}
  if (Number(params.num_class ?? 0) > 1) fail(`multi-class models (num_class=${params.num_class}) are not supported`)
  if (Number(params.num_target ?? 1) > 1) fail(`multi-target models (num_target=${params.num_target}) are not supported`)
  const booster = learner.gradient_booster
  if (booster?.name !== 'gbtree') fail(`booster ${String(booster?.name)} is not supported: only gbtree`)
  const trees: JsonTree[] | undefined = booster.model?.trees
  if (!Array.isArray(trees) || trees.length === 0) fail('the model has no trees')

  const numFeatures = Number(params.num_feature)
  if (!Number.isInteger(numFeatures) || numFeatures < 1) fail(`num_feature ${String(params.num_feature)} is not a positive integer`)
  const baseScore = parseBaseScore(params.base_score)
  const featureNames = Array.isArray(learner.feature_names) && learner.feature_names.length > 0 ? learner.feature_names : undefined
  return { trees, numFeatures, baseMargin: Math.log(baseScore / (1 - baseScore)), featureNames }
}

/** The trees in flat typed arrays, each node checked (children in range, features known, no categorical splits). */
export function flattenTrees ({ trees, numFeatures, baseMargin }: CheckedModel): Forest {
  const numNodes = trees.reduce((n, tree) => n + (tree.left_children?.length ?? 0), 0)
  const roots = new Int32Array(trees.length)
  const left = new Int32Array(numNodes)
  const right = new Int32Array(numNodes)
  const feature = new Int32Array(numNodes)
  const threshold = new Float32Array(numNodes)
  const defaultLeft = new Uint8Array(numNodes)
  // Leaf values in doubles: XGBoost sums float32 leaves, the difference is far below 1e-6.
  const leaf = new Float64Array(numNodes)
  // Node covers for TreeSHAP; every tree XGBoost writes has them, but prediction does not need them.
  const hasCover = trees.every(tree => Array.isArray(tree.sum_hessian) && tree.sum_hessian.length === (tree.left_children?.length ?? 0))
  const cover = hasCover ? new Float64Array(numNodes) : undefined

  let offset = 0
  trees.forEach((tree, t) => {
    const n = tree.left_children?.length ?? 0
    if (n === 0) fail(`tree ${t} has no nodes`)
    for (const key of ['right_children', 'split_indices', 'split_conditions', 'default_left'] as const) {
      if (!Array.isArray(tree[key]) || tree[key].length !== n) fail(`tree ${t}: ${key} does not have ${n} entries`)
    }
    if ((tree.split_type ?? []).some(type => type !== 0) || (tree.categories_nodes ?? []).length > 0) {
      fail(`tree ${t} has categorical splits, which are not supported`)
    }
    roots[t] = offset
    for (let i = 0; i < n; i++) {
      const l = tree.left_children[i]
      const node = offset + i
      if (cover !== undefined) cover[node] = Math.fround(tree.sum_hessian![i])
      if (l === -1) {
        left[node] = -1
        right[node] = -1
        leaf[node] = Math.fround(tree.split_conditions[i])
        continue
      }
      const r = tree.right_children[i]
      if (!(l > i && l < n && r > i && r < n)) fail(`tree ${t}: node ${i} has children out of range`)
      const f = tree.split_indices[i]
      if (!(Number.isInteger(f) && f >= 0 && f < numFeatures)) fail(`tree ${t}: node ${i} splits on feature ${f}, outside 0..${numFeatures - 1}`)
      left[node] = offset + l
      right[node] = offset + r
      feature[node] = f
      threshold[node] = tree.split_conditions[i]
      defaultLeft[node] = Number(tree.default_left[i]) ? 1 : 0
    }
    offset += n
  })
  return { roots, left, right, feature, threshold, defaultLeft, leaf, cover, baseMargin, numFeatures }
}

/** The margin function of a forest: base margin plus the leaf each tree reaches. */
export function marginOf ({ roots, left, right, feature, threshold, defaultLeft, leaf, baseMargin }: Forest) {
  return function predictMargin (x: Float32Array): number {
    let margin = baseMargin
    for (let t = 0; t < roots.length; t++) {
      let node = roots[t]
      while (left[node] !== -1) {
        const v = x[feature[node]]
        // NaN is missing: take the direction learned for missing values.
        node = Number.isNaN(v) ? (defaultLeft[node] === 1 ? left[node] : right[node]) : (v < threshold[node] ? left[node] : right[node])
      }
      margin += leaf[node]
    }
    return margin
  }
}

/** Checks, flattens and evaluates a model file. */
export function parseXGBoostModel (json: unknown): XGBoostModel {
  const checked = checkLearner(json)
  const forest = flattenTrees(checked)
  const predictMargin = marginOf(forest)
  return {
    numFeatures: checked.numFeatures,
    numTrees: checked.trees.length,
    featureNames: checked.featureNames,
    predictProbability: (x: Float32Array): number => 1 / (1 + Math.exp(-predictMargin(x))),
    predictMargin,
    forest,
  }
}
