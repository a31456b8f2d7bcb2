import { Type, type Static } from '@sinclair/typebox'

const Share = Type.Number({ minimum: 0, maximum: 1 })

/** What the classifier and the detector together did on a set of flows, at one detector threshold. */
export const NoveltyEvaluation = Type.Object({
  threshold: Type.Number(),
  attacks_caught_or_flagged: Type.Number({ minimum: 0, maximum: 1, description: 'Share of attacks predicted attack or flagged unfamiliar' }),
  attacks_predicted: Type.Number({ minimum: 0, maximum: 1, description: 'Share of attacks the classifier alone predicted attack' }),
  benign_flagged: Type.Number({ minimum: 0, maximum: 1, description: 'Share of benign flows flagged unfamiliar' }),
  benign_predicted_attack: Type.Optional(Share),
  by_family: Type.Array(Type.Object({
    family: Type.String(),
    rows: Type.Integer({ minimum: 0 }),
    rate: Type.Number({ minimum: 0, maximum: 1, description: 'Attack families: share predicted attack or flagged; Benign: share flagged' }),
    predicted_attack: Type.Optional(Share),
  })),
  curve: Type.Optional(Type.Array(Type.Object({
    threshold: Type.Number(),
    attacks_caught_or_flagged: Share,
    benign_flagged: Share,
  }), { description: 'The trade-off at other thresholds (quantiles of the benign cross-validated scores)' })),
  measures: Type.Optional(Type.String()),
  data: Type.Optional(Type.String()),
  command: Type.Optional(Type.String()),
  fitted_without: Type.Optional(Type.Array(Type.String(), { description: 'Capture days the model and detector measured were fitted without' })),
}, { $id: 'NoveltyEvaluation', title: 'NoveltyEvaluation' })
export type NoveltyEvaluation = Static<typeof NoveltyEvaluation>

/** The detector's card: `novelty.json` without its trees and drift reference. */
export const NoveltyCard = Type.Object({
  kind: Type.Literal('isolation-forest'),
  version: Type.String({ minLength: 1 }),
  model_version: Type.String({ description: 'The model version the detector was fitted beside' }),
  features: Type.Array(Type.String()),
  score: Type.String({ description: 'What the score means' }),
  fitted_on: Type.Record(Type.String(), Type.Unknown()),
  threshold: Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'The detector\'s own threshold: a score at or above it is unfamiliar' }),
  threshold_selection: Type.String(),
  cv: Type.Ref(NoveltyEvaluation),
  command: Type.String({ description: 'The command that fitted the detector' }),
  sample_size: Type.Integer({ minimum: 2 }),
  average_path_length: Type.Number({ exclusiveMinimum: 0, description: 'c(sample_size), which normalises the mean path length' }),
  holdout: Type.Optional(Type.Ref(NoveltyEvaluation, { description: 'This model and detector on the holdout (whose capture days they were fitted on)' })),
  holdout_days_unseen: Type.Optional(Type.Ref(NoveltyEvaluation, { description: 'The same recipes fitted without the holdout\'s days, on the holdout' })),
}, { $id: 'NoveltyCard', title: 'NoveltyCard' })
export type NoveltyCard = Static<typeof NoveltyCard>

/** Per feature: the training distribution over decile bins (bin i holds edges[i-1] <= v < edges[i]) and missing. */
export const DriftReference = Type.Object({
  rows: Type.Integer({ minimum: 1 }),
  which: Type.String(),
  features: Type.Record(Type.String(), Type.Object({
    edges: Type.Array(Type.Number()),
    shares: Type.Array(Share),
    missing: Share,
  })),
})
export type DriftReference = Static<typeof DriftReference>

const Tree = Type.Object({
  left_children: Type.Array(Type.Integer()),
  right_children: Type.Array(Type.Integer()),
  split_indices: Type.Array(Type.Integer()),
  split_conditions: Type.Array(Type.Number()),
  default_left: Type.Array(Type.Integer()),
})

/** `models/<name>/novelty.json`, as training/novelty.py writes it. */
export const NoveltyFile = Type.Composite([
  Type.Omit(NoveltyCard, ['cv', 'holdout', 'holdout_days_unseen']),
  Type.Object({
    cv: NoveltyEvaluation,
    holdout: Type.Optional(NoveltyEvaluation),
    holdout_days_unseen: Type.Optional(NoveltyEvaluation),
    drift_reference: Type.Optional(DriftReference),
    trees: Type.Array(Tree, { minItems: 1 }),
  }),
])
export type NoveltyFile = Static<typeof NoveltyFile>

/** /api/model's `novelty`: the detector in force, or why there is none. */
export const NoveltyInfo = Type.Object({
  available: Type.Boolean({ description: 'Whether rows get an unfamiliarity score; false: scores and flags are absent from answers' }),
  reason: Type.Optional(Type.String({ description: 'Why there is no score, when available is false' })),
  threshold: Type.Optional(Type.Number({ description: 'The threshold in force: NOVELTY_THRESHOLD when set, else the detector\'s own' })),
  card: Type.Optional(Type.Ref(NoveltyCard)),
}, { $id: 'NoveltyInfo', title: 'NoveltyInfo' })
export type NoveltyInfo = Static<typeof NoveltyInfo>

/** GET /api/drift: how far recent traffic has moved from the training data, per feature. */
export const DriftSummary = Type.Object({
  available: Type.Boolean({ description: 'false: drift is not measured (no drift reference beside the model, SageMaker, or DRIFT_WINDOW_ROWS=0)' }),
  reason: Type.Optional(Type.String()),
  window_rows: Type.Optional(Type.Integer({ description: 'DRIFT_WINDOW_ROWS: the window\'s size' })),
  rows: Type.Optional(Type.Integer({ description: 'Rows in the window now (0.9-1.0 x window_rows once full)' })),
  reference_rows: Type.Optional(Type.Integer({ description: 'Training rows of the reference distribution' })),
  features: Type.Optional(Type.Array(Type.Object({
    feature: Type.String(),
    psi: Type.Number({ description: 'Population stability index over the training deciles and a missing bin: < 0.1 stable, 0.1-0.25 moving, > 0.25 shifted' }),
  }), { description: 'Every model feature, largest PSI first' })),
}, { $id: 'DriftSummary', title: 'DriftSummary' })
export type DriftSummary = Static<typeof DriftSummary>
