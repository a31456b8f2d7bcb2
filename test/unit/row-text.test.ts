import t from 'tap'
import fc from 'fast-check'
import { parseJsonBody } from '../../input/body.js'
import { envelopeBytes, MAX_PAYLOAD_BYTES, notificationsFor, payloadBytes } from '../../notifications/message.js'
import { MAX_SQS_BODY_BYTES, oversizedRow } from '../../notifications/sizes.js'
import { rememberSource, rowTexts } from '../../notifications/row-text.js'
import type { PandasSplitFrame, Prediction } from '../../schemas/predictions.js'

// A row's text is reused in its notification only where that is proven to say what was parsed
// (notifications/row-text.ts): these tests hold the reuse to "the same values, cell for cell".

/** Equal values, -0 and 0 told apart: what "parses to the same" means here. */
function sameValues (a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, k) => sameValues(x, b[k]))
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const keys = Object.keys(a)
    return keys.length === Object.keys(b).length && keys.every(k => sameValues((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  }
  return Object.is(a, b)
}

const parse = (text: string) => parseJsonBody(Buffer.from(text), { depthChecked: false }) as PandasSplitFrame

/** A number as clients may spell it, each spelling parsing to the same double. */
const numberText = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).chain(v => fc.constantFrom(
    JSON.stringify(v),
    v.toExponential(),
    v.toExponential().toUpperCase(),
    Number.isInteger(v) && Math.abs(v) < 1e15 ? `${v}.0` : JSON.stringify(v))),
  fc.integer().map(String),
  fc.constantFrom('0.0', '-0', '-0.0', '1e400', '-1E+400', '1e-400', '0.30000000000000004', '2000000.0', '1.0E2')
)
const stringText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }).map(s => JSON.stringify(s)),
  fc.constantFrom('"21/02/2018 10:15:06"', '"é😀"', '"\\u0041"', '"a\\"b"', '"\\\\"', '""', '"\u2028"')
)
const cellText = fc.oneof({ weight: 4, arbitrary: numberText }, { weight: 1, arbitrary: fc.constant('null') }, { weight: 1, arbitrary: stringText })
const gap = fc.constantFrom('', '', '', ' ', '\n', '\r\n\t')

/** A body's text: rows of cells as spelt, gaps where JSON allows them, decoys JSON.parse drops or ignores. */
const bodyText = fc.record({
  rows: fc.array(fc.array(cellText, { maxLength: 6 }), { maxLength: 6 }),
  gaps: fc.array(gap, { minLength: 1, maxLength: 4 }),
  decoy: fc.constantFrom('none', 'earlier data', 'nested data', 'escaped key', 'later data', 'scalar keys', 'odd elements'),
}).map(({ rows, gaps, decoy }) => {
  let k = 0
  const g = () => gaps[k++ % gaps.length]
  // Elements that are not rows (the walk must step over them as JSON.parse does, not vouch for them).
  const elements = rows.map(row => `[${g()}${row.join(`${g()},${g()}`)}${g()}]`)
  if (decoy === 'odd elements') elements.push('7', '{"a":[1,"]"]}', 'null', '"[1]"')
  const data = `[${g()}${elements.join(`,${g()}`)}${g()}]`
  const keys = [`"columns"${g()}:${g()}["a","b"]`, `"data"${g()}:${g()}${data}`]
  if (decoy === 'earlier data') keys.unshift('"data":[[1,2],[3]]')
  if (decoy === 'nested data') keys.unshift('"meta":{"data":[[9]],"s":"]\\"}"}')
  if (decoy === 'escaped key') keys.push('"d\\u0061ta":[[7,7]]')
  if (decoy === 'later data') keys.push('"data":[[5,"x"],[6]]')
  if (decoy === 'scalar keys') keys.splice(1, 0, `"n"${g()}:${g()}-1.5e3`, `"t":true${g()}`, '"z":null')
  return `${g()}{${g()}${keys.join(`,${g()}`)}${g()}}${g()}`
})

t.test('property: a reused row text parses to the parsed row, cell for cell', async t => {
  let reused = 0
  let rows = 0
  fc.assert(fc.property(bodyText, text => {
    const frame = parse(text)
    const texts = rowTexts(frame)
    if (texts === undefined) return true
    if (texts.length !== frame.data.length) return false
    texts.forEach((row, i) => {
      rows++
      if (row === undefined) return
      reused++
      if (!sameValues(JSON.parse(row), frame.data[i])) throw new Error(`row ${i}: ${row} is not ${JSON.stringify(frame.data[i])}`)
    })
    return true
  }), { numRuns: 3000 })
  // About a quarter of the rows drawn are compact: many must have been reused, or the test proves nothing.
  t.ok(reused > rows / 8, `${reused} of ${rows} rows reused`)
})

/** Per class (the `prediction` attribute), the labels and rows its messages carry, in order, and the other attributes. */
function announced (notifications: ReturnType<typeof notificationsFor>) {
  const byClass = new Map<string, { index: unknown[], data: unknown[], model: string, requestId: string }>()
  for (const n of notifications) {
    const body = JSON.parse(n.message) as { index: unknown[], data: unknown[] }
    const seen = byClass.get(n.attributes.prediction) ?? { index: [], data: [], model: n.attributes.model, requestId: n.attributes.request_id }
    seen.index.push(...body.index)
    seen.data.push(...body.data)
    byClass.set(n.attributes.prediction, seen)
  }
  return [...byClass].sort(([a], [b]) => a.localeCompare(b))
}

t.test('property: notifications built from the text say what those written anew say', async t => {
  const predictions = [1, 0, 1, 1, 0, 0] as Prediction[]
  let differentSpelling = 0
  fc.assert(fc.property(bodyText, fc.constantFrom('row', 'request') as fc.Arbitrary<'row' | 'request'>, (text, grouping) => {
    const frame = parse(text)
    // Elements that are not rows fail validation: such a body is never announced.
    fc.pre(frame.data.every(row => Array.isArray(row)))
    // A copy is not the object the text was kept for: its rows are written anew with JSON.stringify.
    const anew = notificationsFor({ ...frame }, predictions.slice(0, frame.data.length), 'all', { model: 'm', requestId: 'r' }, grouping)
    const reused = notificationsFor(frame, predictions.slice(0, frame.data.length), 'all', { model: 'm', requestId: 'r' }, grouping)
    for (const n of reused) if (/[\n\r]/.test(n.message)) throw new Error(`a raw newline in ${n.message}`)
    // Each message alike, as long as they are split alike (request grouping splits by size, and a
    // client's spelling may be longer): else the same labels and rows per class, in the same order.
    if (reused.length === anew.length) {
      reused.forEach((n, k) => {
        if (n.message !== anew[k].message) differentSpelling++
        if (!sameValues(JSON.parse(n.message), JSON.parse(anew[k].message)) || !sameValues(n.attributes, anew[k].attributes)) {
          throw new Error(`${n.message} is not ${anew[k].message}`)
        }
      })
    }
    if (!sameValues(announced(reused), announced(anew))) throw new Error(`other rows announced for ${text}`)
    return true
  }), { numRuns: 2000 })
  t.ok(differentSpelling > 0, `${differentSpelling} messages kept a client's spelling`)
})

t.test('what is reused and what is written anew', async t => {
  const messageOf = (text: string) => notificationsFor(parse(text), [1], 'all', { model: 'm', requestId: 'r' }, 'request')[0].message
  t.equal(messageOf('{"columns":["a","b"],"data":[[0.0,"21/02/2018 10:15:06"]]}'), '{"columns":["a","b","prediction"],"index":[0],"data":[[0.0,"21/02/2018 10:15:06",1]]}',
    'a compact row keeps its spelling (pandas writes 0.0)')
  t.equal(messageOf('{"columns":["a","b"],"data":[[0.0, 2]]}'), '{"columns":["a","b","prediction"],"index":[0],"data":[[0,2,1]]}', 'whitespace in a row: written anew')
  t.equal(messageOf('{"columns":["a","b"],"data":[[-0,1e400]]}'), '{"columns":["a","b","prediction"],"index":[0],"data":[[0,null,1]]}', '-0 and an overflowing number: written anew')
  t.equal(messageOf('{"columns":["a"],"data":[["\\u0041"]]}'), '{"columns":["a","prediction"],"index":[0],"data":[["A",1]]}', 'an escape in a string: written anew')
  t.equal(messageOf('{"columns":["a"],"data":[[1.50]],"d\\u0061ta":[[2.50]]}'), '{"columns":["a","prediction"],"index":[0],"data":[[2.5,1]]}',
    'an escaped key (JSON.parse\'s last data): no row of the body reused')
  t.equal(messageOf('{"data":[[1.50]],"columns":["a"],"data":[[2.50]]}'), '{"columns":["a","prediction"],"index":[0],"data":[[2.50,1]]}', 'repeated keys: the last data, as JSON.parse')
  t.equal(messageOf('{"columns":["a"],"data":[[1.00000000000000000000000000]]}'), '{"columns":["a","prediction"],"index":[0],"data":[[1,1]]}',
    'a number spelt longer than JSON.stringify ever writes one (25 characters): written anew')
  t.equal(messageOf('{"columns":["prediction"],"data":[[0.50]]}'), '{"columns":["prediction"],"index":[0],"data":[[1]]}', 'a prediction column of its own: written anew')
  // Escapes in the strings before the rows: the walk must end each string where JSON.parse does.
  for (const columns of ['["a\\"]","b"]', '["a\\\\","b"]', '["a\\\\\\"]\\\\","b"]']) {
    t.same(rowTexts(parse(`{"columns":${columns},"data":[[1,2]]}`)), ['[1,2]'], `found after the columns ${columns}`)
  }
  t.equal(rowTexts({ data: [[1]] }), undefined, 'a frame built in code has no text')
  const frame = { columns: ['a'], data: [[1], [2]] }
  rememberSource(frame, '{"columns":["a"],"data":[[1]]}')
  t.equal(rowTexts(frame), undefined, 'a text with another number of rows than parsed vouches for none')
})

t.test('a number spelt far longer than JSON.stringify would is written anew: the messages are split as for the row written anew', async t => {
  // Found by review: 19 strings of 1,024 characters and 1 followed by 115,000 zeros, twice. Its text
  // was within the size bound for 19 strings, and made two messages where the row written anew makes one.
  const columns = Array.from({ length: 20 }, (_, c) => `c${c}`)
  const row = `[${Array(19).fill(`"${'a'.repeat(1024)}"`).join(',')},1.${'0'.repeat(115_000)}]`
  const frame = parse(`{"columns":${JSON.stringify(columns)},"data":[${row},${row}]}`)
  t.equal(oversizedRow(frame), undefined, 'accepted')
  const reused = notificationsFor(frame, [1, 1], 'all', { model: 'm', requestId: 'r' }, 'request')
  const anew = notificationsFor({ ...frame }, [1, 1], 'all', { model: 'm', requestId: 'r' }, 'request')
  t.same(reused, anew, 'the same messages')
  t.equal(reused.length, 1)
})

t.test('a row whose spelling would not fit a message where JSON.stringify\'s does is written anew, and fits', async t => {
  // 300 numbers spelt in 24 characters (JSON.stringify: 5) beside k strings of 1,024: around k = 240
  // the row's own text passes a message's limit while the row written anew does not.
  const number = '0.0000000000000000000001'
  let anew = 0
  for (let k = 230; k <= 250; k++) {
    const columns = Array.from({ length: k + 300 }, (_, c) => `c${c}`)
    const row = `[${[...Array.from({ length: k }, () => `"${'x'.repeat(1024)}"`), ...Array.from({ length: 300 }, () => number)].join(',')}]`
    const frame = parse(`{"columns":${JSON.stringify(columns)},"data":[${row}]}`)
    if (oversizedRow(frame) !== undefined) continue // refused with a 400: nothing announced
    const [n] = notificationsFor(frame, [1], 'all', { model: 'm', requestId: 'r' }, 'request')
    if (!(payloadBytes(n) <= MAX_PAYLOAD_BYTES && envelopeBytes(n) <= MAX_SQS_BODY_BYTES)) t.fail(`k = ${k}: the message does not fit`)
    if (!n.message.includes(number)) anew++
  }
  t.ok(anew > 0, `${anew} accepted rows written anew rather than past the limit`)
})
