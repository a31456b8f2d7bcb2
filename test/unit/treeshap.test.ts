import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseXGBoostModel, type Forest } from '../../classifier/xgboost.js'
import { createTreeExplainer } from '../../classifier/treeshap.js'
import { projectRoot } from '../../project.js'
import { modelDir } from '../helper.js'
import { stump } from '../support/models.js'

/**
 * A random XGBoost JSON model: full trees of the given depth over a few features, features repeating
 * along paths (the case TreeSHAP's unwinding handles), random default directions and covers that add
 * up as XGBoost's do (a parent's cover is its children's sum).
 */
function randomModel (seed: number, opts: { trees: number, depth: number, features: number }) {
  let state = seed
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648
    return state / 2147483648
  }
  const trees = []
  for (let t = 0; t < opts.trees; t++) {
    const leftChildren: number[] = []
    const rightChildren: number[] = []
    const splitIndices: number[] = []
    const conditions: number[] = []
    const defaultLeft: number[] = []
    const hessian: number[] = []
    // Nodes in breadth-first order, as XGBoost numbers them; a leaf's cover is random, an inner node's the sum.
    const count = 2 ** (opts.depth + 1) - 1
    for (let i = 0; i < count; i++) {
      const inner = 2 * i + 1 < count
      leftChildren.push(inner ? 2 * i + 1 : -1)
      rightChildren.push(inner ? 2 * i + 2 : -1)
      splitIndices.push(inner ? Math.floor(random() * opts.features) : 0)
      conditions.push(inner ? Math.round(random() * 100) / 10 : Math.round((random() - 0.5) * 2000) / 1000)
      defaultLeft.push(random() < 0.5 ? 1 : 0)
      hessian.push(0)
    }
    for (let i = count - 1; i >= 0; i--) {
      hessian[i] = leftChildren[i] === -1 ? 1 + Math.floor(random() * 50) : hessian[leftChildren[i]] + hessian[rightChildren[i]]
    }
    trees.push({
      left_children: leftChildren,
      right_children: rightChildren,
      split_indices: splitIndices,
      split_conditions: conditions,
      default_left: defaultLeft,
      sum_hessian: hessian,
      split_type: leftChildren.map(() => 0),
      categories_nodes: [],
    })
  }
  return {
    learner: {
      objective: { name: 'binary:logistic' },
      learner_model_param: { base_score: '3E-1', num_class: '0', num_feature: String(opts.features), num_target: '1' },
      gradient_booster: { name: 'gbtree', model: { trees } },
    },
  }
}

/**
 * Shapley values by their definition, with the path-dependent value function TreeSHAP uses: v(S) is a
 * tree's value when the features in S follow the row and the others split by cover. 2^M subsets per
 * feature: only for a handful of features.
 */
function bruteForceShapley (forest: Forest, x: Float32Array): Float64Array {
  const { roots, left, right, feature, threshold, defaultLeft, leaf, numFeatures } = forest
  const cover = forest.cover!
  const value = (node: number, known: number): number => {
    if (left[node] === -1) return leaf[node]
    const f = feature[node]
    if (known & (1 << f)) {
      const v = x[f]
      const goesLeft = Number.isNaN(v) ? defaultLeft[node] === 1 : v < threshold[node]
      return value(goesLeft ? left[node] : right[node], known)
    }
    return (value(left[node], known) * cover[left[node]] + value(right[node], known) * cover[right[node]]) / cover[node]
  }
  const v = (known: number) => {
    let sum = 0
    for (let t = 0; t < roots.length; t++) sum += value(roots[t], known)
    return sum
  }
  const factorial = (n: number): number => n <= 1 ? 1 : n * factorial(n - 1)
  const phi = new Float64Array(numFeatures)
  for (let i = 0; i < numFeatures; i++) {
    for (let s = 0; s < 1 << numFeatures; s++) {
      if (s & (1 << i)) continue
      let size = 0
      for (let b = s; b > 0; b >>= 1) size += b & 1
      const weight = factorial(size) * factorial(numFeatures - size - 1) / factorial(numFeatures)
      phi[i] += weight * (v(s | (1 << i)) - v(s))
    }
  }
  return phi
}

t.test('equals the Shapley values by definition on random deep trees, missing values included', async t => {
  for (const [seed, depth, features] of [[1, 3, 3], [7, 5, 4], [42, 6, 5], [99, 4, 2]]) {
    const model = parseXGBoostModel(randomModel(seed, { trees: 6, depth, features }))
    const explainer = createTreeExplainer(model.forest)
    const phi = new Float64Array(features)
    let worst = 0
    let worstSum = 0
    for (let r = 0; r < 40; r++) {
      const x = Float32Array.from({ length: features }, (_, f) => (r + f) % 5 === 0 ? NaN : ((r * 7 + f * 13) % 100) / 10)
      explainer.explain(x, phi)
      const expected = bruteForceShapley(model.forest, x)
      for (let f = 0; f < features; f++) worst = Math.max(worst, Math.abs(phi[f] - expected[f]))
      const sum = phi.reduce((a, b) => a + b, explainer.bias)
      worstSum = Math.max(worstSum, Math.abs(sum - model.predictMargin(x)))
    }
    t.ok(worst < 1e-9, `seed ${seed}, depth ${depth}: max |TreeSHAP - Shapley| ${worst.toExponential(2)}`)
    t.ok(worstSum < 1e-9, `seed ${seed}: contributions + bias = margin (max |diff| ${worstSum.toExponential(2)})`)
  }
})

t.test('a stump: the split feature takes the whole difference from the expected value', async t => {
  // Feature 1 < 5 goes left (leaf -1, cover 3, and the default), else right (leaf +1, cover 1).
  const model = parseXGBoostModel(stump(5, { features: 2, defaultLeft: true, extra: { split_indices: [1, 0, 0], sum_hessian: [4, 3, 1] } }))
  const explainer = createTreeExplainer(model.forest)
  t.equal(explainer.bias, (3 * -1 + 1 * 1) / 4, 'the cover-weighted mean leaf, base_score 0.5 being margin 0')
  const phi = new Float64Array(2)
  explainer.explain(new Float32Array([0, 9]), phi)
  t.same([...phi], [0, 1 - -0.5])
  explainer.explain(new Float32Array([0, NaN]), phi)
  t.same([...phi], [0, -1 - -0.5], 'missing goes the default way (left)')
})

t.test('a model without covers cannot be explained, and says why', async t => {
  const raw = JSON.parse(readFileSync(join(modelDir, 'model.json'), 'utf8'))
  for (const tree of raw.learner.gradient_booster.model.trees) delete tree.sum_hessian
  const model = parseXGBoostModel(raw)
  t.equal(model.forest.cover, undefined)
  t.throws(() => createTreeExplainer(model.forest), /sum_hessian/)
})

t.test('parity with XGBoost\'s pred_contribs on deep trees: max |diff| <= 1e-5', async t => {
  // A synthetic model with trees six levels deep, written with its rows by training/shap_parity.py --deep.
  const deep: { model: unknown, rows: Array<Array<number | null>>, contributions: number[][], bias: number[], margins: number[] } =
    JSON.parse(readFileSync(join(projectRoot(), 'test', 'fixtures', 'treeshap-deep.json'), 'utf8'))
  const model = parseXGBoostModel(deep.model)
  const explainer = createTreeExplainer(model.forest)
  const { left, roots } = model.forest
  const depth = (node: number): number => left[node] === -1 ? 0 : 1 + Math.max(depth(left[node]), depth(model.forest.right[node]))
  t.equal(Math.max(...Array.from(roots, depth)), 6, 'trees six levels deep')
  t.ok(deep.rows.flat().some(v => v === null), 'rows with missing values')
  const phi = new Float64Array(model.numFeatures)
  let worst = 0
  let worstBias = 0
  let worstMargin = 0
  deep.rows.forEach((row, r) => {
    const x = Float32Array.from(row, v => v ?? NaN)
    explainer.explain(x, phi)
    phi.forEach((v, f) => { worst = Math.max(worst, Math.abs(v - deep.contributions[r][f])) })
    worstBias = Math.max(worstBias, Math.abs(explainer.bias - deep.bias[r]))
    worstMargin = Math.max(worstMargin, Math.abs(model.predictMargin(x) - deep.margins[r]))
  })
  t.ok(worst <= 1e-5, `contributions: max |diff| ${worst.toExponential(2)}`)
  t.ok(worstBias <= 1e-5, `bias: max |diff| ${worstBias.toExponential(2)}`)
  t.ok(worstMargin <= 1e-5, `margins: max |diff| ${worstMargin.toExponential(2)}`)
})
