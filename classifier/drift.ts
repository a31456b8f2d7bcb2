import type { DriftReference } from '../schemas/novelty.js'

/**
 * How far recent traffic's feature distributions have moved from the training data's: per feature, the
 * population stability index (PSI) of the last `windowRows` rows classified over the training deciles
 * (and a bin for missing values), sum over bins of (recent - training) * ln(recent / training).
 * Conventional reading: below 0.1 stable, 0.1-0.25 moving, above 0.25 shifted.
 *
 * The window slides in tenths: rows are counted in buckets of windowRows / 10; the window is the nine latest
 * full buckets and the one filling, so the figures cover the last 0.9-1.0 x windowRows rows. Counting a row
 * is a few comparisons per feature and no allocation.
 */
export interface DriftMonitor {
  readonly windowRows: number
  readonly referenceRows: number
  /** Counts one row of preprocessed features (NaN = missing), in the model's feature order. */
  observe (features: Float32Array): void
  /** Adds rows counted elsewhere (a worker thread's DriftTally). */
  merge (tally: DriftCounts): void
  /** Rows in the window and each feature's PSI against the training distribution. */
  summary (): { rows: number, psi: Array<{ feature: string, psi: number }> }
}

/** Rows counted per feature and bin (stride: each feature's bins, missing last), as a worker thread hands them over. */
export interface DriftCounts {
  counts: Int32Array
  rows: number
}

/** Counts rows without a window, for a worker thread to hand its counts to the main thread's monitor. */
export interface DriftTally {
  observe (features: Float32Array): void
  /** The counts since the last take, and a fresh start. */
  take (): DriftCounts
}

// A share of 0 in either distribution would make the index infinite: floor both (the usual convention).
const FLOOR = 1e-4
const BUCKETS = 10

/** Each feature's decile edges and the counting of a row into bins of a flat array. */
function binning (reference: DriftReference, features: readonly string[]) {
  const edges = features.map(f => {
    const ref = reference.features[f]
    if (ref === undefined) throw new Error(`the drift reference has no feature ${f}`)
    if (ref.shares.length !== ref.edges.length + 1) throw new Error(`the drift reference of ${f} has ${ref.shares.length} shares for ${ref.edges.length} edges`)
    return Float32Array.from(ref.edges)
  })
  // Every feature gets the same stride: its value bins, then missing last.
  const stride = Math.max(...edges.map(e => e.length)) + 2
  // All edges in one array, each feature's padded to the same width with +Infinity (which no value reaches).
  const width = stride - 2
  const flat = new Float32Array(edges.length * width).fill(Infinity)
  edges.forEach((e, i) => flat.set(e, i * width))
  return {
    stride,
    size: features.length * stride,
    /** Counts row `x` into `a`, and into `b` when given (no allocation per row). */
    add (x: Float32Array, a: Int32Array, b?: Int32Array): void {
      for (let i = 0; i < edges.length; i++) {
        const v = x[i]
        let bin: number
        if (Number.isNaN(v)) {
          bin = stride - 1
        } else {
          // Edges ascend: the bin is how many of them v reaches.
          bin = 0
          for (let k = i * width, end = k + width; k < end && v >= flat[k]; k++) bin++
        }
        a[i * stride + bin]++
        if (b !== undefined) b[i * stride + bin]++
      }
    },
  }
}

export function createDriftTally (reference: DriftReference, features: readonly string[]): DriftTally {
  const { size, add } = binning(reference, features)
  let counts = new Int32Array(size)
  let rows = 0
  return {
    observe (x: Float32Array): void {
      add(x, counts)
      rows++
    },
    take (): DriftCounts {
      const taken = { counts, rows }
      counts = new Int32Array(size)
      rows = 0
      return taken
    },
  }
}

export function createDriftMonitor (reference: DriftReference, features: readonly string[], windowRows: number): DriftMonitor {
  const { stride, size, add } = binning(reference, features)
  const expected = new Float64Array(size)
  features.forEach((f, i) => {
    const ref = reference.features[f]
    ref.shares.forEach((share, b) => { expected[i * stride + b] = share })
    expected[i * stride + stride - 1] = ref.missing
  })
  const bucketRows = Math.max(1, Math.ceil(windowRows / BUCKETS))
  const totals = new Int32Array(size)
  const closed: DriftCounts[] = []
  let open = new Int32Array(size)
  let openRows = 0
  let closedRows = 0

  /** Closes the open bucket once full, and drops the oldest while the rest leave no room for a new one. */
  function roll (): void {
    if (openRows < bucketRows) return
    closed.push({ counts: open, rows: openRows })
    closedRows += openRows
    open = new Int32Array(size)
    openRows = 0
    while (closed.length > 1 && closedRows > windowRows - bucketRows) {
      const dropped = closed.shift()!
      for (let k = 0; k < size; k++) totals[k] -= dropped.counts[k]
      closedRows -= dropped.rows
    }
  }

  return {
    windowRows,
    referenceRows: reference.rows,
    observe (x: Float32Array): void {
      add(x, open, totals)
      openRows++
      roll()
    },
    merge ({ counts, rows }: DriftCounts): void {
      for (let k = 0; k < size; k++) {
        open[k] += counts[k]
        totals[k] += counts[k]
      }
      openRows += rows
      roll()
    },
    summary () {
      const rows = closedRows + openRows
      const psi = features.map((feature, i) => {
        let sum = 0
        if (rows > 0) {
          for (let b = 0; b < stride; b++) {
            // Bins that are empty in both add nothing.
            if (expected[i * stride + b] === 0 && totals[i * stride + b] === 0) continue
            const e = Math.max(expected[i * stride + b], FLOOR)
            const a = Math.max(totals[i * stride + b] / rows, FLOOR)
            sum += (a - e) * Math.log(a / e)
          }
        }
        return { feature, psi: sum }
      })
      return { rows, psi }
    },
  }
}
