import type { MlflowRequest } from '../schemas/mlflow.js'
import type { PandasSplitFrame } from '../schemas/predictions.js'
import { InvalidInputError } from '../errors.js'

/** MLflow 2.x's input fields, exactly one of which a scoring body has. */
export const MLFLOW_FIELDS = ['dataframe_split', 'dataframe_records', 'instances', 'inputs'] as const

type Cell = number | string | null
type Records = Array<Record<string, Cell>>
type Columns = Record<string, Cell[]>

/** The rows of an MLflow body, for the row limit before validation; undefined when it has no list of them. */
export function mlflowRows (body: object): unknown[] | undefined {
  const b = body as Record<string, unknown>
  const split = b.dataframe_split as { data?: unknown } | undefined
  for (const rows of [split?.data, b.dataframe_records, b.instances, b.inputs]) {
    if (Array.isArray(rows)) return rows
  }
  return undefined
}

/** Records to a split frame as `pd.DataFrame(records)` builds it: every key seen, in first-seen order; absent keys null. */
function fromRecords (records: Records): PandasSplitFrame {
  const columns: string[] = []
  const at = new Map<string, number>()
  for (const record of records) {
    for (const key in record) {
      if (!at.has(key)) {
        at.set(key, columns.length)
        columns.push(key)
      }
    }
  }
  const data = records.map(record => columns.map(column => record[column] ?? null))
  return { columns, data }
}

function fromColumns (field: string, dict: Columns): PandasSplitFrame {
  const columns = Object.keys(dict)
  const rows = columns.length === 0 ? 0 : dict[columns[0]].length
  for (const column of columns) {
    if (dict[column].length !== rows) {
      throw new InvalidInputError(`${field}: column ${JSON.stringify(column)} has ${dict[column].length} values but ${JSON.stringify(columns[0])} has ${rows}`)
    }
  }
  const data = Array.from({ length: rows }, (_, r) => columns.map(column => dict[column][r]))
  return { columns, data }
}

/** A schema-valid MLflow 2.x body to the split frame every backend takes. */
export function mlflowToFrame (body: MlflowRequest): PandasSplitFrame {
  const fields = MLFLOW_FIELDS.filter(field => body[field] !== undefined)
  if (fields.length !== 1) {
    throw new InvalidInputError(`the body must have exactly one of ${MLFLOW_FIELDS.join(', ')}; it has ${fields.length === 0 ? 'none' : fields.join(', ')}`)
  }
  const field = fields[0]
  if (field === 'dataframe_split') return body.dataframe_split as PandasSplitFrame
  if (field === 'dataframe_records') return fromRecords(body.dataframe_records as Records)
  const value = body[field] as Records | Columns
  return Array.isArray(value) ? fromRecords(value) : fromColumns(field, value)
}
