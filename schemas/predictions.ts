import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Type, type Static } from '@sinclair/typebox'
import { projectRoot } from '../project.js'

/** A cell as pandas writes it: a number, a string (e.g. a timestamp) or null (NaN and ±inf). */
export const MAX_STRING_CELL_LENGTH = 1024
export const Cell = Type.Unsafe<number | string | null>({
  type: ['number', 'string', 'null'],
  maxLength: MAX_STRING_CELL_LENGTH,
  description: 'A number, a string (at most 1,024 characters), or null for a missing or non-finite value',
})

// Bounds that keep a hostile body from costing more than a real one: CICFlowMeter writes about 80
// columns with short names.
export const MAX_COLUMNS = 1000
export const MAX_COLUMN_NAME_LENGTH = 256

/** A pandas DataFrame in JSON split orientation, as `DataFrame.to_json(orient="split")` writes it. */
export const PandasSplitFrame = Type.Object({
  columns: Type.Array(Type.String({ maxLength: MAX_COLUMN_NAME_LENGTH }), { maxItems: MAX_COLUMNS, description: 'Column names, CICFlowMeter snake_case or original headers, any order' }),
  index: Type.Optional(Type.Array(Type.Union([Type.Integer(), Type.String({ maxLength: 256 })]), { description: 'Row labels, echoed in notifications' })),
  data: Type.Array(Type.Array(Cell), { description: 'Rows, one value per column' }),
}, {
  $id: 'PandasSplitFrame',
  title: 'PandasSplitFrame',
  additionalProperties: false,
  // A real request, so that Swagger UI's "Try it out" answers 200: a typical benign and a typical attack flow.
  examples: [JSON.parse(readFileSync(join(projectRoot(), 'examples', 'flows.json'), 'utf8'))],
})
export type PandasSplitFrame = Static<typeof PandasSplitFrame>

// An integer enum rather than a union of literals: the same type for clients, a faster serializer.
export const Prediction = Type.Unsafe<0 | 1>({ type: 'integer', enum: [0, 1], description: '0 = benign, 1 = attack' })
export type Prediction = Static<typeof Prediction>

export const Predictions = Type.Array(Prediction, {
  $id: 'Predictions',
  title: 'Predictions',
  description: 'One prediction per row, in input order',
  examples: [[0, 1]],
})
export type Predictions = Static<typeof Predictions>

export const Scores = Type.Object({
  model: Type.String({ description: 'The model (or SageMaker endpoint) that scored the rows', examples: ['cic-ids2018-xgb'] }),
  threshold: Type.Number({ description: 'The threshold in force: a score at or above it is an attack', examples: [0.4433] }),
  scores: Type.Array(Type.Number({ minimum: 0, maximum: 1 }), { description: 'Attack probability of each row, in input order', examples: [[0.08, 0.93]] }),
  predictions: Type.Ref(Predictions),
  novelty: Type.Optional(Type.Object({
    threshold: Type.Number({ description: 'The threshold in force (NOVELTY_THRESHOLD, else the detector\'s): a score at or above it is unfamiliar', examples: [0.566] }),
    scores: Type.Array(Type.Number({ minimum: 0, maximum: 1 }), { description: 'Unfamiliarity score of each row (isolation forest, in (0, 1]), in input order', examples: [[0.41, 0.62]] }),
    unfamiliar: Type.Array(Type.Boolean(), { description: 'Whether each row\'s score is at or above the threshold', examples: [[false, true]] }),
  }, { description: 'How unlike the training flows each row is; absent when the model has no detector (see `novelty` in /api/model) or on SageMaker' })),
}, { $id: 'Scores', title: 'Scores' })
export type Scores = Static<typeof Scores>

/** Media types the flow routes accept; the first is what the earlier service documented. */
export const PREDICTION_MEDIA_TYPES = ['application/json; format=pandas-split', 'application/json', 'text/csv'] as const
