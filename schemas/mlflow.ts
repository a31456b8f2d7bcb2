import { Type, type Static } from '@sinclair/typebox'
import { Cell, MAX_COLUMN_NAME_LENGTH, MAX_COLUMNS, PandasSplitFrame, Prediction } from './predictions.js'

/** One flow as an object, column name to value (`DataFrame.to_dict(orient="records")`). */
const FlowRecord = Type.Record(Type.String({ maxLength: MAX_COLUMN_NAME_LENGTH }), Cell, { maxProperties: MAX_COLUMNS })
const Records = Type.Array(FlowRecord, { description: 'One object per flow, column name to value' })
const Columns = Type.Record(Type.String({ maxLength: MAX_COLUMN_NAME_LENGTH }), Type.Array(Cell), {
  maxProperties: MAX_COLUMNS,
  description: 'Column name to the column\'s values, one per flow',
})

/** The body of MLflow 2.x's scoring protocol (`POST /invocations`, application/json): exactly one input field. */
export const MlflowRequest = Type.Object({
  dataframe_split: Type.Optional(Type.Ref(PandasSplitFrame)),
  dataframe_records: Type.Optional(Records),
  instances: Type.Optional(Type.Union([Records, Columns], { description: 'Records, or a column dictionary' })),
  inputs: Type.Optional(Type.Union([Records, Columns], { description: 'Records, or a column dictionary' })),
  params: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Inference parameters: this model takes none, so they are ignored' })),
}, {
  $id: 'MlflowRequest',
  title: 'MlflowRequest',
  additionalProperties: false,
  minProperties: 1,
  description: 'MLflow 2.x scoring input: exactly one of `dataframe_split`, `dataframe_records`, `instances`, `inputs`',
})
export type MlflowRequest = Static<typeof MlflowRequest>

/** MLflow 2.x's answer. */
export const MlflowPredictions = Type.Object({
  predictions: Type.Array(Prediction, { description: 'One prediction per row, in input order: 0 = benign, 1 = attack' }),
}, { $id: 'MlflowPredictions', title: 'MlflowPredictions', examples: [{ predictions: [0, 1] }] })
export type MlflowPredictions = Static<typeof MlflowPredictions>

/** What GET /version answers. */
export const VersionInfo = Type.Object({
  service: Type.String({ description: 'This service\'s name and version', examples: ['ml-ids-api 1.0.0'] }),
  model: Type.String({ description: 'The model (or SageMaker endpoint) serving predictions', examples: ['cic-ids2018-xgb'] }),
  model_version: Type.Optional(Type.String({ examples: ['450751b639f2'] })),
  backend: Type.String({ examples: ['local'] }),
}, { $id: 'VersionInfo', title: 'VersionInfo' })
export type VersionInfo = Static<typeof VersionInfo>
