import { Type, type Static } from '@sinclair/typebox'
import { NoveltyInfo } from './novelty.js'

/** One label's rows in an evaluation: how many were flagged as attacks (recall for attack families, false-positive rate for Benign). */
export const FamilyRate = Type.Object({
  family: Type.String({ description: 'The label column\'s value: `Benign` or the attack family' }),
  rows: Type.Integer({ minimum: 0 }),
  flagged_as_attack: Type.Integer({ minimum: 0 }),
  rate: Type.Number({ minimum: 0, maximum: 1, description: 'flagged_as_attack / rows' }),
  days: Type.Optional(Type.Integer({ minimum: 0, description: 'Capture days the label spans (cross-validation only)' })),
  rows_family_unseen: Type.Optional(Type.Integer({
    minimum: 0,
    description: 'Rows scored by a fold model trained on no row of this label (cross-validation only)',
  })),
}, { $id: 'FamilyRate', title: 'FamilyRate' })
export type FamilyRate = Static<typeof FamilyRate>

/** One evaluation of the model's quality (cross-validation or the holdout): not Prometheus metrics. */
export const Evaluation = Type.Object({
  accuracy: Type.Number(),
  precision: Type.Number(),
  recall: Type.Number(),
  f1: Type.Optional(Type.Number()),
  false_positive_rate: Type.Union([Type.Number(), Type.Null()]),
  roc_auc: Type.Optional(Type.Number()),
  rows: Type.Optional(Type.Integer()),
  data: Type.Optional(Type.String()),
  command: Type.Optional(Type.String()),
  measures: Type.Optional(Type.String({ description: 'What these figures measure, and what they do not' })),
  model: Type.Optional(Type.Object({
    name: Type.String(),
    version: Type.Optional(Type.String()),
    training: Type.Optional(Type.String({ description: 'The command that trained the model these figures are of' })),
  }, { description: 'The model evaluated, when it is not this one' })),
  by_family: Type.Optional(Type.Array(Type.Ref(FamilyRate))),
}, { $id: 'Evaluation', title: 'Evaluation' })
export type Evaluation = Static<typeof Evaluation>

/** One row of the model card's operating table: what a threshold would have done in cross-validation. */
export const OperatingPoint = Type.Object({
  threshold: Type.Number({ minimum: 0, maximum: 1 }),
  recall: Type.Number({ minimum: 0, maximum: 1, description: 'Share of attacks flagged, out of fold (training folds, never the holdout)' }),
  false_positive_rate: Type.Number({ minimum: 0, maximum: 1, description: 'Share of benign flows flagged, out of fold' }),
}, { $id: 'OperatingPoint', title: 'OperatingPoint' })
export type OperatingPoint = Static<typeof OperatingPoint>

export const Preprocessing = Type.Object({
  column_names: Type.Literal('snake_case', { description: 'Request columns are lower-cased, every run of other characters turned into `_`' }),
  non_finite: Type.Literal('missing'),
  negative: Type.Union([Type.Literal('missing'), Type.Literal('keep')]),
  negative_allowed: Type.Array(Type.String()),
}, { $id: 'Preprocessing', title: 'Preprocessing' })
export type Preprocessing = Static<typeof Preprocessing>

/** `models/<name>/metadata.json`, as training/train.py writes it. */
export const ModelMetadata = Type.Object({
  name: Type.String({ minLength: 1 }),
  version: Type.String({ minLength: 1 }),
  format: Type.Literal('xgboost-json'),
  objective: Type.Literal('binary:logistic'),
  features: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
  preprocessing: Type.Ref(Preprocessing),
  threshold: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }),
  labels: Type.Object({ 0: Type.String(), 1: Type.String() }),
  training: Type.Record(Type.String(), Type.Unknown()),
  cv_metrics: Type.Optional(Type.Ref(Evaluation)),
  operating_points: Type.Optional(Type.Array(Type.Ref(OperatingPoint))),
  holdout_metrics: Type.Optional(Type.Ref(Evaluation)),
  holdout_metrics_days_unseen: Type.Optional(Type.Ref(Evaluation)),
})
export type ModelMetadata = Static<typeof ModelMetadata>

export const ModelInfo = Type.Object({
  backend: Type.Union([Type.Literal('local'), Type.Literal('sagemaker')], { description: '`local`: the embedded model, evaluated in this process; `sagemaker`: a SageMaker endpoint' }),
  name: Type.String({ description: 'Model name (local) or endpoint name (SageMaker)' }),
  version: Type.Optional(Type.String()),
  features: Type.Optional(Type.Array(Type.String(), { description: 'Features the model reads, in order' })),
  preprocessing: Type.Optional(Type.Ref(Preprocessing)),
  threshold: Type.Optional(Type.Number({ description: 'The threshold in force: attack probability at or above which a flow is an attack (ATTACK_THRESHOLD when set, else the model\'s)' })),
  model_threshold: Type.Optional(Type.Number({ description: 'The model\'s own threshold, when ATTACK_THRESHOLD overrides it' })),
  operating_points: Type.Optional(Type.Array(Type.Ref(OperatingPoint), {
    description: 'Cross-validated recall and false-positive rate at a range of thresholds (training folds, never the holdout): ' +
      'pick a threshold by the false alarms you can afford',
  })),
  labels: Type.Object({ 0: Type.String(), 1: Type.String() }),
  training: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  cv_metrics: Type.Optional(Type.Ref(Evaluation, {
    description: 'Cross-validation grouped by capture day on the training data: the estimate for days the model has not seen',
  })),
  holdout_metrics: Type.Optional(Type.Ref(Evaluation, {
    description: 'This model on the holdout, whose capture days it was trained on: other flows of seen days and attack families',
  })),
  holdout_metrics_days_unseen: Type.Optional(Type.Ref(Evaluation, {
    description: 'The same recipe trained without the holdout\'s capture days, on the holdout: a model that has not seen those days',
  })),
  novelty: Type.Optional(Type.Ref(NoveltyInfo, { description: 'The unfamiliar-flow detector: its card and threshold in force, or why rows get no score' })),
  sagemaker: Type.Optional(Type.Object({
    endpoint: Type.String(),
    region: Type.String(),
    input_format: Type.Optional(Type.Union([Type.Literal('pandas-split'), Type.Literal('dataframe_split')], { description: 'How frames are sent: MLflow 1.x `format=pandas-split`, or 2.x `{"dataframe_split": ...}` (with SAGEMAKER_INPUT_FORMAT=auto, what the endpoint was found to take)' })),
  })),
}, { $id: 'ModelInfo', title: 'ModelInfo' })
export type ModelInfo = Static<typeof ModelInfo>
