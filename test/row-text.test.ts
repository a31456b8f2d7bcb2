import t from 'tap'
import fc from 'fast-check'
import { parseJsonBody } from '../input/body.js'
import { notificationsFor } from '../notifications/message.js'
import { findRows, rowTexts } from '../notifications/row-text.js'
import type { PandasSplitFrame } from '../schemas/predictions.js'

/** JSON text with random whitespace between tokens, as hand-written or pretty-printed clients send. */
const spaced = (value: unknown, gaps: readonly string[]) => {
  const json = JSON.stringify(value)
  let out = ''
  let inString = false
  let k = 0
  for (let i = 0; i < json.length; i++) {
    const c = json[i]
    out += c
    if (inString) {
      if (c === '\\') out += json[++i]
      else if (c === '"') inString = false
    } else if (c === '"') {
      inString = true
    } else if (',[]{}:'.includes(c)) {
      out += gaps[k++ % gaps.length]
    }
  }
  return out
}

t.test('findRows finds each row of "data" as the text it was parsed from', async t => {
  const cell = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.constant(null), fc.string({ unit: 'grapheme' }), fc.constantFrom('[', ']', '{', '"data":', '\\', '"', ':['))
  const frame = fc.record({
    columns: fc.array(fc.constantFrom('data', 'a"b', '[x]', 'index', 'columns'), { maxLength: 4 }),
    index: fc.array(fc.oneof(fc.integer(), fc.string()), { maxLength: 3 }),
    data: fc.array(fc.array(cell, { maxLength: 6 }), { maxLength: 8 }),
  })
  fc.assert(fc.property(frame, fc.array(fc.constantFrom('', ' ', '\n', '\t  '), { minLength: 1, maxLength: 4 }), fc.boolean(), (value, gaps, dataFirst) => {
    const ordered = dataFirst ? { data: value.data, columns: value.columns, index: value.index } : value
    const text = spaced(ordered, gaps)
    const { data } = value
    const rows = findRows(text)
    t.ok(rows !== undefined && rows.length === data.length, 'as many rows as data has')
    rows?.forEach((row, i) => { if (JSON.stringify(JSON.parse(row)) !== JSON.stringify(data[i])) t.fail(`row ${i}: ${row}`) })
  }), { numRuns: 300 })
})

t.test('findRows answers undefined unless the rows are certain', async t => {
  t.same(findRows('{"data":[[1,2],[3]]}'), ['[1,2]', '[3]'])
  t.same(findRows('{"data":[[1,"]"],[null, 2],["a\\"]"]]}'), ['[1,"]"]', '[null, 2]', '["a\\"]"]'], 'a bracket inside a string does not end a row')
  t.same(findRows('{"data":[["21/02/2018 10:15:06",1,"x"],["a[b",2],["c{",3],["]",4]]}'), ['["21/02/2018 10:15:06",1,"x"]', '["a[b",2]', '["c{",3]', '["]",4]'])
  // JSON.parse keeps the last of repeated keys, and so does findRows.
  t.same(findRows('{"data":[[1]],"columns":["a"],"data":[[2],[3]]}'), ['[2]', '[3]'])
  t.same(findRows('{"columns":["data"],"data":[[1]]}'), ['[1]'], '"data" as a value or a column name is not the key')
  t.same(findRows('{"x":"data","data":[[1]]}'), ['[1]'])
  t.equal(findRows('{"data":[{"a":1}]}'), undefined, 'a record is not a row')
  t.equal(findRows('{"index":[[1,2]],"data":null}'), undefined, 'an array after another key is not data')
  t.equal(findRows('{"data":"[[1]]"}'), undefined)
  t.equal(findRows('{"nested":{"data":[[1]]}}'), undefined, 'only the top-level object\'s data')
  t.equal(findRows('[[1]]'), undefined)
  t.same(findRows('{"data":[]}'), [])
})

t.test('a parsed body\'s notifications carry its rows as sent, and read back as the frame', async t => {
  const text = '{"columns":["a","b"],"index":[7,"x"],"data":[[1.50, 2e3],[null,  "s]\\""]]}'
  const frame = parseJsonBody(Buffer.from(text), { depthChecked: false }) as PandasSplitFrame
  t.same(rowTexts(frame), ['[1.50, 2e3]', '[null,  "s]\\""]'])
  const [benign, attack] = notificationsFor(frame, [0, 1], 'all', { model: 'm', requestId: 'r' }, 'request')
  t.equal(benign.message, '{"columns":["a","b","prediction"],"index":[7],"data":[[1.50, 2e3,0]]}', 'the client\'s own number text')
  t.same(JSON.parse(attack.message), { columns: ['a', 'b', 'prediction'], index: ['x'], data: [[null, 's]"', 1]] })
  // A frame that was not parsed from JSON text (CSV, MLflow wrappers) is written with JSON.stringify.
  const copy = { ...frame, data: frame.data.map(r => [...r]) }
  t.equal(rowTexts(copy), undefined)
  t.same(notificationsFor(copy, [0, 1], 'all', { model: 'm', requestId: 'r' }, 'request').map(n => JSON.parse(n.message)),
    [benign, attack].map(n => JSON.parse(n.message)))
  // Rows that the text does not match one for one are not trusted.
  const mutated = parseJsonBody(Buffer.from(text), { depthChecked: false }) as PandasSplitFrame
  ;(mutated.data as unknown[][]).push([3, 4])
  t.equal(rowTexts(mutated), undefined)
  const empty = parseJsonBody(Buffer.from('{"columns":[],"data":[[ ]]}'), { depthChecked: false }) as PandasSplitFrame
  t.same(JSON.parse(notificationsFor(empty, [1], 'all', { model: 'm', requestId: 'r' }, 'row')[0].message).data, [[1]], 'an empty row gets its prediction alone')
})
