/** What a scenario measured, as bench/run.ts records it. */
export interface Measured {
  scenario: string
  rows_per_request: number
  connections: number
  req_per_s: number
  rows_per_s: number
  /** The service's CPU per row at a fixed offered load below saturation (all its threads). */
  fixed_load?: { cpu_per_row: { service_us: number } }
}

/**
 * The ratios the suite reports between its scenarios (`limit` names the machine's limit scenario),
 * each only when both of its measures were taken: `--only` skips scenarios, and a ratio of a
 * scenario that did not run is not a number to print.
 */
export function ratiosOf (table: Measured[], limit: string): Record<string, number> {
  const find = (name: string, rows: number, connections = 50) => table.find(r => r.scenario === name && r.rows_per_request === rows && r.connections === connections)
  const ratios: Record<string, number> = {}
  /** a / b, rounded, recorded only when both were measured. */
  function ratio (name: string, a: number | undefined, b: number | undefined) {
    if (a !== undefined && b !== undefined && b > 0) ratios[name] = Math.round(a / b * 100) / 100
  }
  for (const rows of [1, 100]) {
    ratio(`embedded/limit, ${rows} row(s), rows/s`, find('embedded, notifications off', rows)?.rows_per_s, find(limit, rows)?.rows_per_s)
    for (const grouping of ['row', 'request']) {
      ratio(`notifications on (${grouping} grouping)/off (embedded), ${rows} row(s), rows/s`, find(`embedded, notifications on, ${grouping} grouping`, rows)?.rows_per_s, find('embedded, notifications off', rows)?.rows_per_s)
    }
    ratio(`batching on/off (sagemaker 20 ms), ${rows} row(s), rows/s`, find('sagemaker 20 ms, notifications on, batching on', rows)?.rows_per_s, find('sagemaker 20 ms, notifications on, batching off', rows)?.rows_per_s)
  }
  // What a deployment pays: the service's CPU (all threads) per row, at the fixed offered load.
  const cpuAtFixed = (name: string, rows: number) => find(name, rows)?.fixed_load?.cpu_per_row.service_us
  for (const rows of [1, 100]) {
    ratio(`service CPU per row at fixed load: embedded (notifications off)/limit, ${rows} row(s)`, cpuAtFixed('embedded, notifications off', rows), cpuAtFixed(limit, rows))
    for (const grouping of ['row', 'request']) {
      ratio(`service CPU per row at fixed load: notifications on (${grouping} grouping)/off, ${rows} row(s)`, cpuAtFixed(`embedded, notifications on, ${grouping} grouping`, rows), cpuAtFixed('embedded, notifications off', rows))
    }
  }
  ratio('journal on/off (embedded, request grouping, 100 rows), rows/s', find('embedded, notifications on, request grouping', 100)?.rows_per_s, find('embedded, notifications on, request grouping, journal off', 100)?.rows_per_s)
  ratio('batching on/off (sagemaker 20 ms, 256 connections, 1 row), req/s',
    find('sagemaker 20 ms, notifications on, batching on', 1, 256)?.req_per_s, find('sagemaker 20 ms, notifications on, batching off', 1, 256)?.req_per_s)
  // The earlier Python service on this machine class: 122 req/s (1 row), 1,302 rows/s (100 rows).
  for (const batching of ['off', 'on']) {
    ratio(`sagemaker 20 ms (batching ${batching}, notifications on) vs earlier service, 1 row, req/s`, find(`sagemaker 20 ms, notifications on, batching ${batching}`, 1)?.req_per_s, 122)
    ratio(`sagemaker 20 ms (batching ${batching}, notifications on) vs earlier service, 100 rows, rows/s`, find(`sagemaker 20 ms, notifications on, batching ${batching}`, 100)?.rows_per_s, 1302)
  }
  return ratios
}
