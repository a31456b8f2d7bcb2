import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { defaultModelDir } from '../classifier/model.js'

const ZERO_VARIANCE = ['fwd_byts_b_avg', 'fwd_pkts_b_avg', 'fwd_blk_rate_avg', 'bwd_byts_b_avg', 'bwd_pkts_b_avg', 'bwd_blk_rate_avg', 'bwd_psh_flags', 'bwd_urg_flags']

/**
 * Realistic request bodies: the 79 CICFlowMeter columns a client sends (the model's 68, plus
 * dst_port, protocol, timestamp and the zero-variance columns), values at CICFlowMeter's precision.
 * Rows come from the synthetic parity fixture, so no training data is needed.
 */
export function frameOf (rows: number, offset = 0) {
  const parity = JSON.parse(readFileSync(join(defaultModelDir(), 'parity.json'), 'utf8')) as { columns: string[], data: unknown[][] }
  const features = parity.columns.filter(c => c !== 'timestamp' && c !== 'dst_port')
  const columns = ['dst_port', 'protocol', 'timestamp', ...features, ...ZERO_VARIANCE]
  const data = Array.from({ length: rows }, (_, i) => {
    const source = parity.data[(i + offset) % parity.data.length]
    const values = features.map(f => {
      const v = source[parity.columns.indexOf(f)]
      return typeof v === 'number' ? Number(v.toPrecision(7)) : v
    })
    return [443, 6, '21/02/2018 10:15:06', ...values, ...ZERO_VARIANCE.map(() => 0)]
  })
  return { columns, index: data.map((_, i) => i), data }
}
