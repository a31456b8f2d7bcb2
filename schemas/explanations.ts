import { Type, type Static } from '@sinclair/typebox'
import { Prediction } from './predictions.js'

export const ExplanationQuery = Type.Object({
  // An integer, so that generated clients type it as one: the route reads a query string of digits
  // as a number before it is checked, so "5" passes and "5x", "0" or "10000" are refused.
  top: Type.Optional(Type.Integer({
    minimum: 1,
    maximum: 9999,
    description: 'Keep only the N contributions largest by absolute value (1 to 9999); all model features when absent',
    examples: [5],
  })),
}, { additionalProperties: false })
export type ExplanationQuery = Static<typeof ExplanationQuery>

/** One row's explanation: what the model said, and how much each feature moved it. */
export const Explanation = Type.Object({
  prediction: Prediction,
  score: Type.Number({ description: 'Attack probability: the prediction is 1 when it is at or above the threshold' }),
  margin: Type.Number({ description: 'The model\'s raw output (log-odds); score = 1 / (1 + exp(-margin))' }),
  bias: Type.Number({ description: 'The expected margin over the training data (the same for every row): contributions plus bias equal the margin' }),
  contributions: Type.Record(Type.String(), Type.Number(), {
    description: 'Feature name to its SHAP value in margin (log-odds) units, largest absolute value first: positive pushes towards attack. ' +
      'Every model feature, or the `top` largest.',
  }),
  novelty: Type.Optional(Type.Number({ description: 'Unfamiliarity score (isolation forest, in (0, 1]): how unlike the training flows the row is; absent when the model has no detector' })),
  unfamiliar: Type.Optional(Type.Boolean({ description: 'Whether `novelty` is at or above the threshold in force (NOVELTY_THRESHOLD, else the detector\'s)' })),
}, { title: 'Explanation' })
export type Explanation = Static<typeof Explanation>

export const Explanations = Type.Array(Explanation, {
  $id: 'Explanations',
  title: 'Explanations',
  description: 'One explanation per row, in input order',
  examples: [[{
    prediction: 1,
    score: 0.93,
    margin: 2.586,
    bias: 0.098,
    contributions: { fwd_seg_size_min: 1.214, init_fwd_win_byts: 0.871, flow_iat_min: 0.402 },
  }]],
})
export type Explanations = Static<typeof Explanations>
