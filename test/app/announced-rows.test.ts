import t, { type Test } from 'tap'
import fc from 'fast-check'
import { existsSync, mkdtempSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkedFrame, compileFrameValidator } from '../../input/body.js'
import { notificationsFor } from '../../notifications/message.js'
import type { PandasSplitFrame, Prediction } from '../../schemas/predictions.js'
import { build, examples, splitFrame } from '../helper.js'
import { snsServer } from '../support/sns.js'

/**
 * Rows announced are rows classified: whatever the spelling of a body JSON.parse accepts, each
 * notification's row deep-equals the parsed row (plus its prediction), and no message holds a raw
 * newline (the journal, SSE and the log file carry messages whole).
 */

/** A string as JSON with some characters written as `\uXXXX` escapes (`mask` picks which). */
function escaped (value: string, mask: number): string {
  const plain = JSON.stringify(value)
  let out = '"'
  let k = 0
  for (const ch of value) {
    const code = ch.codePointAt(0)!
    if ((mask >> (k++ % 16)) & 1 && code < 0x10000) out += '\\u' + code.toString(16).padStart(4, '0')
    else out += JSON.stringify(ch).slice(1, -1)
  }
  return plain.length > 0 ? out + '"' : out
}

interface Spelling { gaps: readonly string[], mask: number, decoys: boolean, dataFirst: boolean }

/** `value` as JSON text, spelt as `s` says: whitespace between tokens, escapes in strings and keys, decoy repeated keys. */
function spell (value: unknown, s: Spelling, top = true): string {
  let k = 0
  const gap = () => s.gaps[k++ % s.gaps.length]
  const write = (v: unknown): string => {
    if (typeof v === 'string') return escaped(v, s.mask)
    if (Array.isArray(v)) return `[${gap()}${v.map(write).join(`${gap()},${gap()}`)}${gap()}]`
    if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v)
      return `{${gap()}${entries.map(([key, x]) => `${escaped(key, s.mask)}${gap()}:${gap()}${write(x)}`).join(`,${gap()}`)}${gap()}}`
    }
    return JSON.stringify(v)
  }
  if (!top || value === null || typeof value !== 'object') return write(value)
  const frame = value as Record<string, unknown>
  // Decoys first: JSON.parse keeps the last of repeated keys, so only the real ones count.
  const decoys: Array<[string, unknown]> = s.decoys ? [['data', [[0]]], ['columns', ['decoy']], ['index', ['decoy']]] : []
  const real = Object.entries(frame).filter(([, x]) => x !== undefined)
  if (s.dataFirst) real.sort(([a], [b]) => Number(b === 'data') - Number(a === 'data'))
  return `{${gap()}${[...decoys, ...real].map(([key, x]) => `${escaped(key, s.mask)}${gap()}:${gap()}${write(x)}`).join(`,${gap()}\r\n`)}${gap()}}`
}

const cell = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
  fc.constant(null),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('21/02/2018 10:15:06', 'a\nb', 'tab\there', '"quoted"', '\\', '\u2028', 'é😀', '[', ']')
)
const frameArb = fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 6 })).chain(([width, rows]) => fc.record({
  columns: fc.uniqueArray(fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.constantFrom('prediction', 'data', 'dst_port', 'flow_duration')), { minLength: width, maxLength: width }),
  // Unique labels, so each announced row is found by its label.
  index: fc.option(fc.uniqueArray(fc.oneof(fc.integer(), fc.string({ maxLength: 6 })), { minLength: rows, maxLength: rows, selector: v => JSON.stringify(v) }), { nil: undefined }),
  data: fc.array(fc.array(cell, { minLength: width, maxLength: width }), { minLength: rows, maxLength: rows }),
}))
const spellingArb = fc.record({
  gaps: fc.array(fc.constantFrom('', ' ', '\n', '\r\n', '\t', '  \r\n\t '), { minLength: 1, maxLength: 5 }),
  mask: fc.integer({ min: 0, max: 0xffff }),
  decoys: fc.boolean(),
  dataFirst: fc.boolean(),
})

/** The rows messages carry, by index label: `[row without prediction, prediction]`. */
function announced (messages: readonly string[]): Map<string, { row: unknown[], prediction: unknown }> {
  const out = new Map<string, { row: unknown[], prediction: unknown }>()
  for (const message of messages) {
    const body = JSON.parse(message) as { columns: string[], index: unknown[], data: unknown[][] }
    const at = body.columns.indexOf('prediction')
    body.data.forEach((row, k) => {
      const rest = row.slice()
      const [prediction] = rest.splice(at, 1)
      out.set(JSON.stringify(body.index[k]), { row: rest, prediction })
    })
  }
  return out
}

t.test('property: every body JSON.parse accepts and the service answers announces exactly the rows it parsed', async t => {
  const validate = compileFrameValidator()
  let answered = 0
  fc.assert(fc.property(frameArb, spellingArb, fc.constantFrom('row', 'request') as fc.Arbitrary<'row' | 'request'>, fc.array(fc.constantFrom(0, 1) as fc.Arbitrary<Prediction>, { minLength: 6, maxLength: 6 }), (value, spelling, grouping, classes) => {
    const text = spell(value, spelling)
    let frame: PandasSplitFrame
    try {
      frame = checkedFrame(Buffer.from(text), { maxRows: 100, path: '/api/predictions' }, validate)
    } catch {
      return // refused with a 4xx: nothing is announced
    }
    answered++
    const parsed = JSON.parse(text)
    const predictions = classes.slice(0, frame.data.length)
    const messages = notificationsFor(frame, predictions, 'all', { model: 'm', requestId: 'r' }, grouping).map(n => n.message)
    for (const m of messages) if (/[\n\r]/.test(m)) throw new Error(`a raw newline in ${JSON.stringify(m)}`)
    const rows = announced(messages)
    if (rows.size !== parsed.data.length) throw new Error(`${rows.size} rows announced, ${parsed.data.length} parsed`)
    parsed.data.forEach((row: unknown[], i: number) => {
      const label = JSON.stringify(parsed.index?.[i] ?? i)
      const got = rows.get(label)
      // The parsed row, with a `prediction` column of its own left out (it is replaced).
      const want = JSON.parse(JSON.stringify(row)).filter((_: unknown, c: number) => parsed.columns[c] !== 'prediction')
      if (got === undefined || JSON.stringify(got.row) !== JSON.stringify(want) || got.prediction !== predictions[i]) {
        throw new Error(`row ${i} (${label}): announced ${JSON.stringify(got)}, parsed ${JSON.stringify(want)} with ${predictions[i]}`)
      }
    })
  }), { numRuns: 400 })
  t.ok(answered > 200, `${answered} of 400 bodies answered (the others refused as 4xx)`)
})

t.test('a request\'s own prediction column is replaced in place, as the earlier service\'s df["prediction"] = preds did', async t => {
  const frame = { columns: ['a', 'prediction', 'b'], index: [4, 5], data: [[1, 1, 2], [3, 0, 4]] }
  const [row4, row5] = notificationsFor(frame, [0, 1], 'all', { model: 'm', requestId: 'r' }, 'row')
  t.same(JSON.parse(row4.message), { columns: ['a', 'prediction', 'b'], index: [4], data: [[1, 0, 2]] })
  t.same(JSON.parse(row5.message), { columns: ['a', 'prediction', 'b'], index: [5], data: [[3, 1, 4]] })
  const grouped = notificationsFor(frame, [1, 1], 'all', { model: 'm', requestId: 'r' }, 'request')
  t.same(grouped.map(n => JSON.parse(n.message)), [{ columns: ['a', 'prediction', 'b'], index: [4, 5], data: [[1, 1, 2], [3, 1, 4]] }])
})

/** A listening service with a loopback SNS; `send` posts raw bytes to it. */
async function listening (t: Test, env: NodeJS.ProcessEnv = {}) {
  const sns = await snsServer(t)
  const app = await build(t, {
    AWS_SNS_PREDICTIONS_TOPIC: 'arn:aws:sns:eu-west-1:123456789012:ml-ids-predictions',
    AWS_SNS_HOST: sns.url,
    AWS_ACCESS_KEY: 'AKIDEXAMPLE',
    AWS_SECRET_KEY: 'secret',
    NOTIFY_DATA_DIR: mkdtempSync(join(tmpdir(), 'ml-ids-announced-')),
    ...env,
  })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const send = async (body: string, contentType = 'application/json') => {
    const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': contentType }, body })
    return { status: res.status, body: await res.json() as unknown }
  }
  return { sns, app, send }
}

async function settled (app: Awaited<ReturnType<typeof build>>) {
  for (let waited = 0; waited < 10000; waited += 10) {
    const s = app.notifications.stats().sns
    if (s !== null && s.queued === 0 && s.in_flight === 0) return
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

const PYTHON_PRETTY = (value: unknown) => JSON.stringify(value, null, 2).replace(/\n/g, '\r\n')

for (const workers of [{ WORKERS: '0' }, { WORKERS: '1', WORKER_MIN_BYTES: '0' }]) {
  t.test(`through a listening server (WORKERS=${workers.WORKERS}): pretty, CRLF, escaped and repeated keys announce what was classified`, async t => {
    const { sns, app, send } = await listening(t, { NOTIFY_GROUPING: 'row', ...workers })
    const columns = Object.keys(examples.benign)
    const benignRow = columns.map(c => examples.benign[c])
    const attackRow = columns.map(c => examples.attack[c])
    const bodies = [
      { name: 'pretty, CRLF', text: PYTHON_PRETTY({ columns, index: ['pretty'], data: [attackRow] }), row: attackRow },
      { name: 'tabs', text: JSON.stringify({ columns, index: ['tabs'], data: [benignRow] }).replace(/,/g, ',\t\t'), row: benignRow },
      // JSON.parse keeps the last "data", whatever its spelling: the attack row is classified and announced.
      { name: 'escaped key', text: `{"columns":${JSON.stringify(columns)},"index":["escaped"],"data":[${JSON.stringify(benignRow)}],"d\\u0061ta":[${JSON.stringify(attackRow)}]}`, row: attackRow },
      { name: 'repeated key', text: `{"columns":${JSON.stringify(columns)},"index":["repeated"],"data":[${JSON.stringify(attackRow)}],"data":[${JSON.stringify(benignRow)}]}`, row: benignRow },
    ]
    const answers = new Map<string, number>()
    for (const body of bodies) {
      const res = await send(body.text)
      t.equal(res.status, 200, body.name)
      answers.set(body.name, (res.body as number[])[0])
    }
    await settled(app)
    const rows = announced(sns.accepted.map(m => m.message))
    for (const body of bodies) {
      const label = JSON.stringify(JSON.parse(body.text).index[0])
      t.same(rows.get(label), { row: JSON.parse(JSON.stringify(body.row)), prediction: answers.get(body.name) }, `${body.name}: the row classified, with the prediction answered`)
    }
    t.equal(answers.get('escaped key'), 1, 'the escaped key\'s row is the attack')
    t.equal(answers.get('repeated key'), 0)
    for (const m of sns.accepted) t.notMatch(m.message, /[\r\n]/, 'no raw newline in a message')
  })
}

t.test('a request with its own prediction column: the earlier SQS consumer (pandas) reads one prediction column, this model\'s', async t => {
  const python = '/usr/bin/python3'
  if (!existsSync(python) || spawnSync(python, ['-c', 'import pandas']).status !== 0) {
    t.skip('pandas check: /usr/bin/python3 with pandas is not available here', () => {})
    return
  }
  const { sns, app, send } = await listening(t, { NOTIFY_GROUPING: 'request' })
  // A frame that went through a model before: its prediction column says the opposite of this model.
  const frame = splitFrame([examples.benign, examples.attack, examples.benign], { extra: { prediction: 7 } })
  const res = await send(JSON.stringify(frame))
  t.equal(res.status, 200)
  await settled(app)
  // The consumer of the earlier service: the SNS envelope as SQS delivers it, read with pandas.
  const script = `
import io, json, sys
import pandas as pd
for line in sys.stdin:
    envelope = json.dumps({"Type": "Notification", "Message": json.loads(line)["message"]})
    df = pd.read_json(io.StringIO(json.loads(envelope)["Message"]), orient="split")
    print(json.dumps({"index": [int(i) for i in df.index], "prediction": [int(v) for v in df["prediction"]], "prediction_columns": list(df.columns).count("prediction"), "width": len(df.columns)}))
`
  const out = spawnSync(python, ['-c', script], { input: sns.accepted.map(m => JSON.stringify({ message: m.message })).join('\n') + '\n', encoding: 'utf8' })
  t.equal(out.status, 0, out.stderr)
  const frames = out.stdout.trim().split('\n').map(line => JSON.parse(line))
  const byRow = new Map<number, number>()
  for (const f of frames) {
    t.equal(f.prediction_columns, 1, 'one prediction column')
    t.equal(f.width, frame.columns.length, 'no column added')
    f.index.forEach((i: number, k: number) => byRow.set(i, f.prediction[k]))
  }
  t.same([0, 1, 2].map(i => byRow.get(i)), res.body, 'each row\'s prediction is the one answered')
})
