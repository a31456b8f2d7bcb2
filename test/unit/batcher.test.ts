import t from 'tap'
import { createBatcher, type BatcherOptions, type Invoke } from '../../classifier/batcher.js'
import { InvalidInputError, UpstreamError } from '../../errors.js'
import type { Prediction } from '../../schemas/predictions.js'

const defaults: BatcherOptions = { maxRows: 1000, maxBytes: 5 * 1024 * 1024, maxWaitMs: 2, maxInFlight: 16 }
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** A model that answers each row's id modulo 2, after `delay` ms (or when it settles), recording every call's body. */
function model (delay: () => number | Promise<unknown> = () => 0) {
  const bodies: Array<{ columns: string[], data: number[][] }> = []
  const invoke: Invoke = async (body, rows) => {
    const frame = JSON.parse(body)
    bodies.push(frame)
    t.equal(frame.data.length, rows, 'the row count matches the body')
    const wait = delay()
    await (typeof wait === 'number' ? sleep(wait) : wait)
    return frame.data.map((row: number[]) => (row[0] % 2) as Prediction)
  }
  return { invoke, bodies }
}

let nextId = 0
const frameOf = (rows: number, columns = ['id', 'x']) => ({ columns, data: Array.from({ length: rows }, () => [nextId++, 1.5]) })
const expected = (frame: { data: number[][] }) => frame.data.map(row => row[0] % 2)

t.test('each request gets its own predictions, in order, under concurrency', async t => {
  const { invoke, bodies } = model(() => Math.random() * 15)
  const batcher = createBatcher(invoke, defaults)
  const frames = Array.from({ length: 300 }, () => frameOf(1 + Math.floor(Math.random() * 20)))
  const results = await Promise.all(frames.map(async frame => {
    await sleep(Math.random() * 30)
    return batcher.submit(frame)
  }))
  frames.forEach((frame, i) => t.same(results[i], expected(frame), `request ${i}`, { diagnostic: false }))
  t.ok(bodies.length < frames.length / 3, `${bodies.length} calls for ${frames.length} requests`)
  t.equal(bodies.reduce((n, b) => n + b.data.length, 0), frames.reduce((n, f) => n + f.data.length, 0), 'every row sent once')
})

t.test('with nothing in flight a batch leaves at once, with the requests of the same tick', async t => {
  const { invoke, bodies } = model()
  const batcher = createBatcher(invoke, { ...defaults, maxWaitMs: 10_000 })
  const started = Date.now()
  const answers = await Promise.all([batcher.submit(frameOf(2)), batcher.submit(frameOf(3)), batcher.submit(frameOf(1))])
  t.ok(Date.now() - started < 1000, 'no wait for the timer')
  t.equal(bodies.length, 1)
  t.same(answers.map(a => a.length), [2, 3, 1])
})

/** A call that stays out until `release()`: what a test asserts meanwhile cannot depend on the machine's load. */
function held () {
  let release!: () => void
  const out = new Promise<void>(resolve => { release = resolve })
  return { out, release }
}

t.test('while a call is in flight, a batch waits at most maxWaitMs', async t => {
  const call = held()
  const { invoke, bodies } = model(() => bodies.length === 1 ? call.out : 0)
  const batcher = createBatcher(invoke, { ...defaults, maxWaitMs: 20 })
  const first = batcher.submit(frameOf(1))
  await sleep(5)
  const started = Date.now()
  const second = batcher.submit(frameOf(1))
  while (bodies.length < 2 && Date.now() - started < 30_000) await sleep(1)
  const waited = Date.now() - started
  t.equal(bodies.length, 2, 'the second batch left while the first call was still out')
  t.ok(waited >= 15, `after its ${waited} ms wait, not at once`)
  call.release()
  await Promise.all([first, second])
})

t.test('batches close at maxRows and at maxBytes', async t => {
  const byRows = model(() => 20)
  const rowsBatcher = createBatcher(byRows.invoke, { ...defaults, maxRows: 10, maxWaitMs: 50 })
  await rowsBatcher.submit(frameOf(1)) // so that the next ones find a call in flight... then none
  const pending = Array.from({ length: 12 }, () => rowsBatcher.submit(frameOf(3)))
  await Promise.all(pending)
  t.ok(byRows.bodies.every(b => b.data.length <= 10), 'no call over 10 rows')

  const byBytes = model()
  const bytesBatcher = createBatcher(byBytes.invoke, { ...defaults, maxBytes: 400 })
  const answers = await Promise.all(Array.from({ length: 20 }, () => bytesBatcher.submit(frameOf(3))))
  t.ok(answers.every(a => a.length === 3))
  for (const body of byBytes.bodies) t.ok(Buffer.byteLength(JSON.stringify(body)) <= 400, 'within the payload limit')
  t.ok(byBytes.bodies.length > 1, 'split into several calls')
})

t.test('frames with other columns go in other calls', async t => {
  const { invoke, bodies } = model()
  const batcher = createBatcher(invoke, defaults)
  const [a, b] = await Promise.all([batcher.submit(frameOf(2, ['id', 'x'])), batcher.submit(frameOf(2, ['id', 'y']))])
  t.equal(a.length, 2)
  t.equal(b.length, 2)
  t.same(bodies.map(body => body.columns).sort(), [['id', 'x'], ['id', 'y']])
})

t.test('a failed call fails every request in it with the same error', async t => {
  const batcher = createBatcher(async () => { throw new UpstreamError('the SageMaker endpoint failed (status 500)') }, defaults)
  const results = await Promise.allSettled([batcher.submit(frameOf(1)), batcher.submit(frameOf(2))])
  t.same(results.map(r => r.status), ['rejected', 'rejected'])
  for (const r of results) t.match((r as PromiseRejectedResult).reason, { statusCode: 502, message: /status 500/ })
})

t.test('input the model rejects: each request is sent again alone, and only the bad one fails', async t => {
  let calls = 0
  const invoke: Invoke = async (body) => {
    calls++
    const frame = JSON.parse(body)
    if (frame.data.some((row: unknown[]) => row[1] === 'bad')) throw new InvalidInputError('the model rejected the input (status 400)')
    return frame.data.map(() => 0 as Prediction)
  }
  const batcher = createBatcher(invoke, defaults)
  const bad = { columns: ['id', 'x'], data: [[1, 'bad']] }
  const results = await Promise.allSettled([batcher.submit(frameOf(2)), batcher.submit(bad as never), batcher.submit(frameOf(1))])
  t.same(results.map(r => r.status), ['fulfilled', 'rejected', 'fulfilled'])
  t.match((results[1] as PromiseRejectedResult).reason, { statusCode: 400 })
  t.equal(calls, 4, 'one batch, then three single calls')
})

t.test('at maxInFlight, batches wait for a call to return', async t => {
  const call = held()
  const { invoke, bodies } = model(() => bodies.length === 1 ? call.out : 0)
  const batcher = createBatcher(invoke, { ...defaults, maxInFlight: 1, maxWaitMs: 1 })
  const first = batcher.submit(frameOf(1))
  await sleep(5)
  const rest = Array.from({ length: 5 }, () => batcher.submit(frameOf(1)))
  await sleep(10)
  t.equal(bodies.length, 1, 'nothing else left while the one slot was taken')
  call.release()
  await Promise.all([first, ...rest])
  t.equal(bodies.length, 2, 'the waiting requests went together')
})

t.test('close sends what is waiting and waits for the calls in flight', async t => {
  const { invoke } = model(() => 50)
  const batcher = createBatcher(invoke, { ...defaults, maxWaitMs: 10_000 })
  const first = batcher.submit(frameOf(2))
  await sleep(5)
  let settled = 0
  const waiting = [batcher.submit(frameOf(1)), batcher.submit(frameOf(3))].map(p => p.then(a => { settled++; return a }))
  await batcher.close()
  t.equal(settled, 2, 'the waiting batch was sent and answered before close returned')
  t.same((await first).length, 2)
  t.same((await Promise.all(waiting)).map(a => a.length), [1, 3])
})
