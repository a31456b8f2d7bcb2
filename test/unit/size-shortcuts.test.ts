import t from 'tap'
import fc from 'fast-check'
import { escapedBytes, MAX_SQS_BODY_BYTES, SQS_ENVELOPE_FIXED_BYTES } from '../../notifications/sizes.js'
import { envelopeBytes, fitsOnTheWire, MAX_PAYLOAD_BYTES, notificationsFor, payloadBytes, type Notification } from '../../notifications/message.js'

// The shortcuts of issue 21 answer what the exact measures answer (notifications/sizes.ts, message.ts).
const exactEscaped = (text: string) => Buffer.byteLength(JSON.stringify(text)) - 2
const text = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string(), fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u0000', '\u007f', '\u2028', '\ud800', 'é', 'a', '1', ',') }))

t.test('escapedBytes: the escaped size of any string', async t => {
  fc.assert(fc.property(text, s => escapedBytes(s) === exactEscaped(s)), { numRuns: 5000 })
  // Named by their code units: a raw U+2028 in a test's name would cut its TAP line.
  for (const s of ['', '[1,2.5,-3e-7,null]', '"', '\\', '\u001f', '\u007f', '\ud83d\ude00', '\udc00', '\u2028']) t.equal(escapedBytes(s), exactEscaped(s), [...s].map(c => c.charCodeAt(0).toString(16)).join(' '))
})

t.test('fitsOnTheWire: the exact limits, measured or not', async t => {
  const exactFits = (n: Notification) => payloadBytes(n) <= MAX_PAYLOAD_BYTES && envelopeBytes(n) <= MAX_SQS_BODY_BYTES
  const notification = (message: string, attributes: Record<string, string>) => ({ message, attributes } as unknown as Notification)
  fc.assert(fc.property(text, fc.nat({ max: 300_000 }), fc.constantFrom('a', '"', '\u0001', 'é', '\ud83d\ude00'), fc.dictionary(fc.constantFrom('prediction', 'model', 'request_id', 'rows', 'unfamiliar'), text),
    (s, pad, unit, attributes) => {
      const n = notification(s + unit.repeat(Math.floor(pad / unit.length / 4)), attributes)
      return fitsOnTheWire(n) === exactFits(n)
    }), { numRuns: 300 })
  // Around each limit.
  const attributes = { prediction: 'attack', model: 'm', request_id: 'r' }
  for (const unit of ['a', '"', '\u0001', 'é']) {
    for (let length = Math.floor((MAX_SQS_BODY_BYTES - SQS_ENVELOPE_FIXED_BYTES) / exactEscaped(unit)) - 200; length < (MAX_SQS_BODY_BYTES - SQS_ENVELOPE_FIXED_BYTES) / exactEscaped(unit); length += 7) {
      const n = notification(unit.repeat(length), attributes)
      if (fitsOnTheWire(n) !== exactFits(n)) t.fail(`${JSON.stringify(unit)} x ${length}`)
    }
  }
  t.pass('the same answers around the envelope limit')
})

t.test('fitsOnTheWire on the messages notificationsFor sized as it built them', async t => {
  const exactFits = (n: Notification) => payloadBytes(n) <= MAX_PAYLOAD_BYTES && envelopeBytes(n) <= MAX_SQS_BODY_BYTES
  const cell = fc.oneof(fc.double(), fc.constant(null), fc.string({ unit: fc.constantFrom('a', '"', '\\', '\n', 'é', '\ud83d\ude00'), maxLength: 40 }).map(s => s.repeat(600)))
  let messages = 0
  fc.assert(fc.property(fc.array(fc.array(cell, { minLength: 2, maxLength: 2 }), { minLength: 1, maxLength: 40 }), data => {
    const frame = { columns: ['a', 'b'], data }
    const predictions = data.map((_, i) => (i % 3 === 0 ? 1 : 0) as 0 | 1)
    for (const n of notificationsFor(frame, predictions, 'all', { model: 'm', requestId: 'r' }, 'request')) {
      messages++
      if (fitsOnTheWire(n) !== exactFits(n)) return false
    }
    return true
  }), { numRuns: 60 })
  t.ok(messages > 60)
})
