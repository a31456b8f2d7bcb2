/**
 * Scores the model end-to-end through the HTTP API on a labelled CICFlowMeter CSV, overall and per label
 * (the label column gives the attack family):
 *
 *   npm run evaluate -- ../shared/holdout/cic-ids2018-holdout.csv [--url http://host:5000]
 *     [--write-metadata [--metadata <metadata.json>] [--key holdout_metrics]]
 *
 * Without --url it starts the service itself on a loopback port, on its environment (MODEL_DIR picks the
 * model). With --write-metadata the figures are recorded in the served model's metadata.json as
 * holdout_metrics, or in another model card (--metadata) under another key (--key): that is how the model
 * card records a model trained without the holdout's days. Never tune on these figures.
 */
import { createReadStream, readFileSync, writeFileSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { parse } from 'csv-parse'
import { createApp } from '../app.js'
import { snakeCase } from '../classifier/features.js'
import { defaultModelDir } from '../classifier/model.js'
import { commandLine } from './cli.js'

const BATCH_ROWS = 1000

type Cell = number | string | null

/** A CSV cell as pandas would send it: numbers as numbers, non-finite and empty as null. */
function cell (text: string): Cell {
  const trimmed = text.trim()
  if (trimmed === '' || /^[+-]?(inf|infinity|nan)$/i.test(trimmed)) return null
  const value = Number(trimmed)
  return Number.isNaN(value) ? trimmed : value
}

export async function readLabelledFlows (path: string) {
  const columns: string[] = []
  const rows: Cell[][] = []
  const labels: string[] = []
  let labelAt = -1
  for await (const record of createReadStream(path).pipe(parse({ relax_column_count: false })) as AsyncIterable<string[]>) {
    if (labelAt === -1) {
      const names = record.map(snakeCase)
      labelAt = names.indexOf('label')
      if (labelAt === -1) throw new Error(`${path}: no label column`)
      columns.push(...names.filter((_, i) => i !== labelAt))
      continue
    }
    if (record[labelAt].toLowerCase() === 'label') continue // header lines repeated inside the public CSVs
    labels.push(record[labelAt].trim())
    rows.push(record.filter((_, i) => i !== labelAt).map(cell))
  }
  return { columns, rows, labels }
}

export function score (truth: number[], predicted: number[]) {
  let tp = 0; let fp = 0; let tn = 0; let fn = 0
  truth.forEach((y, i) => {
    if (predicted[i] === 1) y === 1 ? tp++ : fp++
    else y === 1 ? fn++ : tn++
  })
  const round = (x: number) => Math.round(x * 10000) / 10000
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp)
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn)
  return {
    accuracy: round((tp + tn) / truth.length),
    precision: round(precision),
    recall: round(recall),
    f1: round(precision + recall === 0 ? 0 : 2 * precision * recall / (precision + recall)),
    false_positive_rate: tn + fp === 0 ? null : round(fp / (tn + fp)),
    rows: truth.length,
    confusion: { tp, fp, tn, fn },
  }
}

/** Per label: rows, how many were flagged as attacks, and that share (recall for attack families, false-positive rate for Benign). */
export function byFamily (labels: readonly string[], predicted: readonly number[]) {
  const counts = new Map<string, { rows: number, flagged: number }>()
  labels.forEach((label, i) => {
    const count = counts.get(label) ?? { rows: 0, flagged: 0 }
    count.rows++
    if (predicted[i] === 1) count.flagged++
    counts.set(label, count)
  })
  return [...counts].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([family, { rows, flagged }]) =>
    ({ family, rows, flagged_as_attack: flagged, rate: Math.round(flagged / rows * 10000) / 10000 }))
}

interface ModelDescription { backend: string, name: string, version?: string, training?: { command?: string } }

/** Posts the labelled CSV to a running service in batches and scores its predictions. */
export async function evaluateCsv (csv: string, url: string) {
  const { columns, rows, labels } = await readLabelledFlows(csv)
  const predicted: number[] = []
  for (let start = 0; start < rows.length; start += BATCH_ROWS) {
    const data = rows.slice(start, start + BATCH_ROWS)
    const res = await fetch(`${url}/api/predictions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; format=pandas-split' },
      body: JSON.stringify({ columns, index: data.map((_, i) => start + i), data }),
    })
    if (!res.ok) throw new Error(`rows ${start}..${start + data.length - 1}: ${res.status} ${await res.text()}`)
    predicted.push(...await res.json() as number[])
  }
  const truth = labels.map(label => label.toLowerCase() === 'benign' ? 0 : 1)
  const described = await (await fetch(`${url}/api/model`)).json() as ModelDescription
  const model = { backend: described.backend, name: described.name, version: described.version, training: described.training?.command }
  return { model, data: basename(csv), ...score(truth, predicted), by_family: byFamily(labels, predicted) }
}

/**
 * Records an evaluation in a model card under `key`. A `measures` text already there (what the figures
 * measure, written by hand) is kept; the evaluated model is named when it is not the card's own.
 */
export function recordEvaluation (metadataPath: string, key: string, report: Awaited<ReturnType<typeof evaluateCsv>>, command: string) {
  const metadata = JSON.parse(readFileSync(metadataPath, 'utf8'))
  const { confusion: _confusion, model, data, by_family: families, ...metrics } = report
  const previous = metadata[key] as { measures?: string } | undefined
  const own = model.name === metadata.name && model.version === metadata.version
  metadata[key] = {
    ...metrics,
    data,
    command,
    ...(previous?.measures === undefined ? {} : { measures: previous.measures }),
    ...(own ? {} : { model: { name: model.name, version: model.version, training: model.training } }),
    by_family: families,
  }
  writeFileSync(metadataPath, JSON.stringify(metadata, null, 2) + '\n')
}

const USAGE = `usage: npm run evaluate -- <labelled.csv> [--url http://host:port] [--write-metadata [--metadata <metadata.json>] [--key <name>]]

Scores the model through the HTTP API on a labelled CICFlowMeter CSV (its Label column), overall and
per label, and prints the report as JSON. Never tune on these figures.

  <labelled.csv>       CICFlowMeter CSV with a Label column (CICFlowMeter-V3 headers or snake_case)
  --url <url>          a running service; without it, the service is started here on a loopback port,
                       on this environment (MODEL_DIR picks the model)
  --write-metadata     record the figures in the served model's metadata.json (embedded model only)
  --metadata <file>    record them in this model card instead
  --key <name>         under this key (default holdout_metrics)
  -h, --help           this text
`

async function main () {
  const { values, positionals } = commandLine('evaluate', USAGE, {
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      'write-metadata': { type: 'boolean' },
      metadata: { type: 'string' },
      key: { type: 'string', default: 'holdout_metrics' },
    },
  })
  const csv = positionals[0]
  if (csv === undefined || positionals.length > 1) {
    console.error(csv === undefined ? 'evaluate: no CSV given (see evaluate --help)' : `evaluate: one CSV at a time, not ${positionals.length} (see evaluate --help)`)
    process.exit(2)
  }
  let url = values.url
  const app = url === undefined ? createApp({ env: process.env }) : undefined
  if (app !== undefined) url = await app.listen({ port: 0, host: '127.0.0.1' })

  try {
    const report = await evaluateCsv(csv, url as string)
    console.log(JSON.stringify(report, null, 2))

    if (values['write-metadata']) {
      if (app?.classifier.backend !== 'local') throw new Error('--write-metadata needs the embedded model (no --url, no SageMaker)')
      const metadataPath = resolve(values.metadata ?? join(app.config.MODEL_DIR ?? defaultModelDir(), 'metadata.json'))
      const options = [
        ...(values.metadata === undefined ? [] : ['--metadata', values.metadata]),
        ...(values.key === 'holdout_metrics' ? [] : ['--key', values.key]),
      ]
      const command = [
        ...(app.config.MODEL_DIR === undefined ? [] : [`MODEL_DIR=${app.config.MODEL_DIR}`]),
        'npm run evaluate --', csv, '--write-metadata', ...options,
      ].join(' ')
      recordEvaluation(metadataPath, values.key as string, report, command)
      console.error(`recorded in ${metadataPath} as ${values.key}`)
    }
  } finally {
    await app?.close()
  }
}

// Run as a script, not when a test imports the helpers above.
if (import.meta.url === `file://${process.argv[1]}`) await main()
