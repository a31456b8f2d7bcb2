/**
 * A one-tree XGBoost model (JSON as XGBoost saves it): `feature < threshold` goes left (leaf -1),
 * else right (leaf +1). `extra` overrides fields of the tree (children, covers, split features...).
 */
export function stump (threshold: number, opts: { features?: number, defaultLeft?: boolean, baseScore?: string, objective?: string, extra?: Record<string, unknown> } = {}) {
  return {
    learner: {
      objective: { name: opts.objective ?? 'binary:logistic' },
      learner_model_param: { base_score: opts.baseScore ?? '5E-1', num_class: '0', num_feature: String(opts.features ?? 1), num_target: '1' },
      gradient_booster: {
        name: 'gbtree',
        model: {
          trees: [{
            left_children: [1, -1, -1],
            right_children: [2, -1, -1],
            split_indices: [0, 0, 0],
            split_conditions: [threshold, -1, 1],
            default_left: [opts.defaultLeft ? 1 : 0, 0, 0],
            split_type: [0, 0, 0],
            categories_nodes: [],
            ...opts.extra,
          }],
        },
      },
    },
  }
}
