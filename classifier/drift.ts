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
  /** Rows in the window and each feature's PSI against the training distribution. */
  summary (): { rows: number, psi: Array<{ feature: string, psi: number }> }
}

// A share of 0 in either distribution would make the index infinite: floor both (the usual convention).
const FLOOR = 1e-4
const BUCKETS = 10

export function createDriftMonitor (reference: DriftReference, features: readonly string[], windowRows: number): DriftMonitor {
  const edges = features.map(f => {
    const ref = reference.features[f]
    if (ref === undefined) throw new Error(`the drift reference has no feature ${f}`)
    if (ref.shares.length !== ref.edges.length + 1) throw new Error(`the drift reference of ${f} has ${ref.shares.length} shares for ${ref.edges.length} edges`)
    return Float32Array.from(ref.edges)
  })
  // Every feature gets the same stride: its value bins, then missing last.
  const stride = Math.max(...edges.map(e => e.length)) + 2
  const expected = new Float64Array(features.length * stride)
  features.forEach((f, i) => {
    const ref = reference.features[f]
    ref.shares.forEach((share, b) => { expected[i * stride + b] = share })
    expected[i * stride + stride - 1] = ref.missing
  })
  const bucketRows = Math.max(1, Math.ceil(windowRows / BUCKETS))
  const totals = new Int32Array(features.length * stride)
  const closed: Array<{ counts: Int32Array }> = []
  let open = new Int32Array(features.length * stride)
  let openRows = 0
  let closedRows = 0

  return {
    windowRows,
    referenceRows: reference.rows,
    observe (x: Float32Array): void {
      for (let i = 0; i < edges.length; i++) {
        const v = x[i]
        let bin: number
        if (Number.isNaN(v)) {
          bin = stride - 1
        } else {
          const e = edges[i]
          bin = 0
          while (bin < e.length && v >= e[bin]) bin++
        }
        open[i * stride + bin]++
        totals[i * stride + bin]++
      }
      if (++openRows === bucketRows) {
        closed.push({ counts: open })
        closedRows += openRows
        if (closed.length > BUCKETS - 1) {
          const dropped = closed.shift()!.counts
          for (let k = 0; k < totals.length; k++) totals[k] -= dropped[k]
          closedRows -= bucketRows
        }
        open = new Int32Array(totals.length)
        openRows = 0
      }
    },
    summary () {
      const rows = closedRows + openRows
      const psi = features.map((feature, i) => {
        let sum = 0
        if (rows > 0) {
          for (let b = 0; b < stride; b++) {
            const e = Math.max(expected[i * stride + b], FLOOR)
            const a = Math.max(totals[i * stride + b] / rows, FLOOR)
            // Bins that are empty in both add nothing.
            if (expected[i * stride + b] === 0 && totals[i * stride + b] === 0) continue
            sum += (a - e) * Math.log(a / e)
          }
        }
        return { feature, psi: sum }
      })
      return { rows, psi }
    },
  }
}
