/**
 * Exact path-dependent TreeSHAP (Lundberg et al., "Consistent Individualized Feature Attribution for
 * Tree Ensembles", Algorithm 2), ported from XGBoost's `src/predictor/treeshap.cc` (ExtendPath,
 * UnwindPath, UnwoundPathSum, TreeShap), so that the contributions equal XGBoost's own
 * `predict(dmatrix, pred_contribs=True)`.
 *
 * It works on the evaluator's flattened trees (classifier/xgboost.ts): the same float32 split
 * comparisons, NaN as missing following `default_left`, node covers from the model's `sum_hessian`,
 * and base_score as a margin in the bias. Per row: O(trees x leaves x depth^2), no allocation.
 */
import { UnsupportedModelError, type Forest } from './xgboost.js'

export interface TreeExplainer {
  readonly numFeatures: number
  /** The expected margin: base_score's margin plus each tree's cover-weighted mean leaf. */
  readonly bias: number
  /**
   * Writes each feature's contribution to the row's margin into `phi` (length numFeatures); the
   * contributions plus `bias` equal the margin. `x` holds float32 features, NaN where missing.
   */
  explain (x: Float32Array, phi: Float64Array): void
}

export function createTreeExplainer (forest: Forest): TreeExplainer {
  const { roots, left, right, feature, threshold, defaultLeft, leaf, baseMargin, numFeatures } = forest
  if (forest.cover === undefined) throw new UnsupportedModelError('the model has no node covers (sum_hessian), which explanations need')
  const cover: Float64Array = forest.cover

  // Each node's expected value under the training distribution (XGBoost's FillNodeMeanValues), and the
  // deepest tree, which sizes the path buffer.
  const mean = new Float64Array(left.length)
  let maxDepth = 0
  function fillMean (node: number, depth: number): number {
    if (left[node] === -1) {
      maxDepth = Math.max(maxDepth, depth)
      mean[node] = leaf[node]
      return leaf[node]
    }
    if (!(cover[node] > 0)) throw new UnsupportedModelError(`node ${node} has cover ${cover[node]}: explanations need positive covers`)
    const value = (fillMean(left[node], depth + 1) * cover[left[node]] + fillMean(right[node], depth + 1) * cover[right[node]]) / cover[node]
    mean[node] = value
    return value
  }
  let bias = baseMargin
  for (let t = 0; t < roots.length; t++) bias += fillMean(roots[t], 0)

  // The decision paths of every recursion level, one after the other as in XGBoost (each level's path
  // starts right after its parent's), as parallel arrays: feature, zero and one fractions, and the
  // permutation weight (the i-th weight belongs to subsets with i features "on").
  const maxd = maxDepth + 2
  const size = (maxd * (maxd + 1)) / 2 + maxd
  const pathFeature = new Int32Array(size)
  const pathZero = new Float64Array(size)
  const pathOne = new Float64Array(size)
  const pathWeight = new Float64Array(size)

  /** Extends the path at `p` (of `depth` elements before this one) with a fraction of ones and zeros. */
  function extendPath (p: number, depth: number, zero: number, one: number, f: number): void {
    pathFeature[p + depth] = f
    pathZero[p + depth] = zero
    pathOne[p + depth] = one
    pathWeight[p + depth] = depth === 0 ? 1 : 0
    for (let i = depth - 1; i >= 0; i--) {
      pathWeight[p + i + 1] += one * pathWeight[p + i] * (i + 1) / (depth + 1)
      pathWeight[p + i] = zero * pathWeight[p + i] * (depth - i) / (depth + 1)
    }
  }

  /** Undoes the extension by the element at `index`, so that a feature split on again is counted once. */
  function unwindPath (p: number, depth: number, index: number): void {
    const one = pathOne[p + index]
    const zero = pathZero[p + index]
    let nextOnePortion = pathWeight[p + depth]
    for (let i = depth - 1; i >= 0; i--) {
      if (one !== 0) {
        const tmp = pathWeight[p + i]
        pathWeight[p + i] = nextOnePortion * (depth + 1) / ((i + 1) * one)
        nextOnePortion = tmp - pathWeight[p + i] * zero * (depth - i) / (depth + 1)
      } else {
        pathWeight[p + i] = (pathWeight[p + i] * (depth + 1)) / (zero * (depth - i))
      }
    }
    for (let i = index; i < depth; i++) {
      pathFeature[p + i] = pathFeature[p + i + 1]
      pathZero[p + i] = pathZero[p + i + 1]
      pathOne[p + i] = pathOne[p + i + 1]
    }
  }

  /** The total permutation weight were the element at `index` unwound, without unwinding it. */
  function unwoundPathSum (p: number, depth: number, index: number): number {
    const one = pathOne[p + index]
    const zero = pathZero[p + index]
    let nextOnePortion = pathWeight[p + depth]
    let total = 0
    for (let i = depth - 1; i >= 0; i--) {
      if (one !== 0) {
        const tmp = nextOnePortion * (depth + 1) / ((i + 1) * one)
        total += tmp
        nextOnePortion = pathWeight[p + i] - tmp * zero * ((depth - i) / (depth + 1))
      } else if (zero !== 0) {
        total += (pathWeight[p + i] / zero) / ((depth - i) / (depth + 1))
      }
    }
    return total
  }

  /**
   * One node of XGBoost's TreeShap recursion (without its conditioning, which only interaction values
   * use): `depth` unique features above this node, the path so far at `parent`, and the fractions of
   * the parent's weight that flow here when its feature is integrated out (zero) or fixed (one).
   */
  function recurse (x: Float32Array, phi: Float64Array, node: number, depth: number, parent: number,
    parentZero: number, parentOne: number, parentFeature: number): void {
    const p = parent + depth + 1
    for (let i = 0; i <= depth; i++) {
      pathFeature[p + i] = pathFeature[parent + i]
      pathZero[p + i] = pathZero[parent + i]
      pathOne[p + i] = pathOne[parent + i]
      pathWeight[p + i] = pathWeight[parent + i]
    }
    extendPath(p, depth, parentZero, parentOne, parentFeature)

    if (left[node] === -1) {
      const value = leaf[node]
      for (let i = 1; i <= depth; i++) {
        const w = unwoundPathSum(p, depth, i)
        phi[pathFeature[p + i]] += w * (pathOne[p + i] - pathZero[p + i]) * value
      }
      return
    }

    // The "hot" child is the one the row takes, exactly as the evaluator decides it.
    const f = feature[node]
    const v = x[f]
    const goesLeft = Number.isNaN(v) ? defaultLeft[node] === 1 : v < threshold[node]
    const hot = goesLeft ? left[node] : right[node]
    const cold = goesLeft ? right[node] : left[node]
    const w = cover[node]
    const hotZero = cover[hot] / w
    const coldZero = cover[cold] / w
    let incomingZero = 1
    let incomingOne = 1

    // A feature already on the path is unwound, to be extended again by this split.
    let index = 0
    while (index <= depth && pathFeature[p + index] !== f) index++
    if (index !== depth + 1) {
      incomingZero = pathZero[p + index]
      incomingOne = pathOne[p + index]
      unwindPath(p, depth, index)
      depth -= 1
    }

    recurse(x, phi, hot, depth + 1, p, hotZero * incomingZero, incomingOne, f)
    recurse(x, phi, cold, depth + 1, p, coldZero * incomingZero, 0, f)
  }

  return {
    numFeatures,
    bias,
    explain (x: Float32Array, phi: Float64Array): void {
      phi.fill(0)
      for (let t = 0; t < roots.length; t++) {
        // The root extends the empty path with feature -1, which matches no split.
        recurse(x, phi, roots[t], 0, 0, 1, 1, -1)
      }
    },
  }
}
