/**
 * Scores the model end-to-end through the HTTP API on a labelled CICFlowMeter CSV:
 *
 *   npm run evaluate -- ../shared/holdout/cic-ids2018-holdout.csv [--url http://host:5000] [--write-metadata]
 *
 * Without --url it starts the service itself on a loopback port, on its defaults (the embedded model).
 * With --write-metadata the figures are recorded as the model's holdout_metrics. Never tune on them.
 */
import { createReadStream, readFileSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { parseArgs } from 'node:util'
import { parse } from 'csv-parse'
import { createApp } from '../app.js'
import { snakeCase } from '../classifier/features.js'
import { defaultModelDir } from '../classifier/model.js'

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

async function main () {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { url: { type: 'string' }, 'write-metadata': { type: 'boolean' } } })
  const csv = positionals[0]
  if (csv === undefined) {
    console.error('usage: npm run evaluate -- <labelled.csv> [--url http://host:port] [--write-metadata]')
    process.exit(2)
  }
  let url = values.url
  const app = url === undefined ? createApp({ env: process.env }) : undefined
  if (app !== undefined) url = await app.listen({ port: 0, host: '127.0.0.1' })

  try {
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
    const { backend, name, version } = await (await fetch(`${url}/api/model`)).json() as { name: string, version?: string, backend: string }
    const model = { backend, name, version }
    const families = [...new Set(labels)].sort().map(family => {
      const at = labels.flatMap((l, i) => l === family ? [i] : [])
      const flagged = at.filter(i => predicted[i] === 1).length
      return { family, rows: at.length, flagged_as_attack: flagged, rate: Math.round(flagged / at.length * 10000) / 10000 }
    })
    const metrics = score(truth, predicted)
    console.log(JSON.stringify({ model, data: basename(csv), ...metrics, by_label: families }, null, 2))

    if (values['write-metadata']) {
      if (app?.classifier.backend !== 'local') throw new Error('--write-metadata needs the embedded model (no --url, no SageMaker)')
      const metadataPath = join(app.config.MODEL_DIR ?? defaultModelDir(), 'metadata.json')
      const metadata = JSON.parse(readFileSync(metadataPath, 'utf8'))
      const { confusion: _confusion, ...recorded } = metrics
      metadata.holdout_metrics = { ...recorded, data: basename(csv), command: `npm run evaluate -- ${csv} --write-metadata` }
      writeFileSync(metadataPath, JSON.stringify(metadata, null, 2) + '\n')
      console.error(`recorded in ${metadataPath}`)
    }
  } finally {
    await app?.close()
  }
}

// Run as a script, not when a test imports the helpers above.
if (import.meta.url === `file://${process.argv[1]}`) await main()
