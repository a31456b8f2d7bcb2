import type { Preprocessing } from '../schemas/model.js'
import { MissingFeaturesError, NonNumericValueError, InvalidInputError } from '../errors.js'

/** CICFlowMeter-V3 header to snake_case: `Flow Byts/s` -> `flow_byts_s`, `Down/Up Ratio` -> `down_up_ratio`. */
export function snakeCase (name: string): string {
  return name.trim().toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '')
}

/** Where each model feature sits in a request's rows, and how its values are cleaned. */
export interface FeaturePlan {
  /** For model feature i, the index of its column in the request. */
  readonly columnOf: Int32Array
  /** 1 where a negative value is kept, 0 where it becomes missing. */
  readonly keepNegative: Uint8Array
}

export function planFeatures (columns: readonly string[], features: readonly string[], preprocessing: Preprocessing): FeaturePlan {
  const wanted = new Map(features.map((f, i) => [preprocessing.column_names === 'snake_case' ? snakeCase(f) : f, i]))
  const columnOf = new Int32Array(features.length).fill(-1)
  columns.forEach((column, c) => {
    const i = wanted.get(preprocessing.column_names === 'snake_case' ? snakeCase(column) : column)
    if (i === undefined) return
    if (columnOf[i] !== -1) {
      throw new InvalidInputError(`columns "${columns[columnOf[i]]}" and "${column}" both name feature ${features[i]}`)
    }
    columnOf[i] = c
  })
  const missing = features.filter((_, i) => columnOf[i] === -1)
  if (missing.length > 0) throw new MissingFeaturesError(missing.join(', '))
  const allowed = new Set(preprocessing.negative_allowed)
  const keepNegative = Uint8Array.from(features, f => preprocessing.negative === 'keep' || allowed.has(f) ? 1 : 0)
  return { columnOf, keepNegative }
}

// Spellings of non-finite values in CICFlowMeter CSVs and pandas/numpy string output.
const NON_FINITE = /^[+-]?(inf|infinity|nan)$/i

const byPosition = (r: number) => `row ${r}`

/**
 * Fills `out` with one row's model features as float32, cleaned as the model was trained:
 * null, ±inf and NaN are missing (NaN); negatives are missing unless kept. Numeric strings are
 * read as numbers (the public CSVs carry "Infinity"); any other string is the client's error, named
 * by `rowName` (its position, or its line in a CSV file).
 */
export function fillFeatures (row: readonly unknown[], rowNumber: number, columns: readonly string[], plan: FeaturePlan, out: Float32Array,
  rowName: (r: number) => string = byPosition): void {
  const { columnOf, keepNegative } = plan
  for (let i = 0; i < columnOf.length; i++) {
    const cell = row[columnOf[i]]
    let value: number
    if (typeof cell === 'number') {
      value = cell
    } else if (cell === null || cell === undefined) {
      value = NaN
    } else if (typeof cell === 'string' && cell.trim() !== '' && (NON_FINITE.test(cell.trim()) || !Number.isNaN(Number(cell)))) {
      value = NON_FINITE.test(cell.trim()) ? NaN : Number(cell)
    } else {
      throw new NonNumericValueError(`${rowName(rowNumber)}, column "${columns[columnOf[i]]}": ${JSON.stringify(cell).slice(0, 40)} is not a number`)
    }
    out[i] = !Number.isFinite(value) || (value < 0 && keepNegative[i] === 0) ? NaN : value
  }
}
