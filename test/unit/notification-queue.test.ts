import t from 'tap'
import { createQueue, type QueueEntry } from '../../notifications/queue.js'

const entry = (replayed: boolean, n: number): QueueEntry => ({
  notification: { message: `{"n":${n}}`, attributes: { prediction: 'attack', model: 'm', request_id: String(n) } },
  bytes: 100,
  enqueuedAt: Date.now(),
  replayed,
  attempts: 0,
  notBefore: 0,
})

t.test('replayed notifications get a bounded, reserved share of the calls: live ones always have the rest', async t => {
  const inFlight: Array<{ batch: QueueEntry[], done: () => void }> = []
  const queue = createQueue({
    concurrency: 4,
    replayShare: 1,
    lingerMs: 0,
    send: batch => new Promise<void>(resolve => { inFlight.push({ batch, done: resolve }) }),
  })
  t.teardown(() => queue.close())
  // A large replay arrives first, then live traffic.
  for (let i = 0; i < 100; i++) queue.push(entry(true, i))
  for (let i = 0; i < 100; i++) queue.push(entry(false, 1000 + i))
  const settled = () => new Promise(resolve => setTimeout(resolve, 5))
  while (inFlight.length < 4) await settled()
  const lanes = () => inFlight.map(c => c.batch[0].replayed ? 'replay' : 'live')
  t.same(lanes().sort(), ['live', 'live', 'live', 'replay'], 'one replay call of four')
  t.ok(inFlight.every(c => c.batch.length === 10 && c.batch.every(e => e.replayed === c.batch[0].replayed)), 'full batches of one lane')
  // As calls finish, the slots go back to their lanes: replay never takes more than its share.
  for (let round = 0; round < 3; round++) {
    const finished = inFlight.splice(0, 2)
    for (const c of finished) c.done()
    while (inFlight.length < 4) await settled()
    t.ok(lanes().filter(l => l === 'replay').length <= 1, `round ${round}: at most one replay call`)
  }
  // Live traffic gone: replay still has its share and goes on.
  while (queue.size.live > 0 || inFlight.some(c => !c.batch[0].replayed)) {
    for (const c of inFlight.splice(0)) c.done()
    await settled()
  }
  t.ok(queue.size.replay > 0 || inFlight.length > 0, 'the replay continues')
  while (inFlight.length > 0 || queue.size.replay > 0) {
    for (const c of inFlight.splice(0)) c.done()
    await settled()
  }
  await queue.drained()
  t.pass('drained')
})

t.test('live notifications linger for company only while they do not fill a call', async t => {
  const sent: QueueEntry[][] = []
  const queue = createQueue({ concurrency: 4, replayShare: 1, lingerMs: 60_000, send: async batch => { sent.push(batch) } })
  t.teardown(() => queue.close())
  const settled = () => new Promise(resolve => setTimeout(resolve, 20))
  queue.push(entry(false, 1))
  queue.push(entry(false, 2))
  await settled()
  t.equal(sent.length, 0, 'two small ones wait for more')
  for (let i = 3; i <= 10; i++) queue.push(entry(false, i))
  await settled()
  t.same(sent.map(b => b.length), [10], 'ten: a full call, sent at once')
  // Two of 150 KB: together past SNS's 256 KiB per call, so each fills a call of its own.
  queue.push({ ...entry(false, 11), bytes: 150 * 1024 })
  await settled()
  t.equal(sent.length, 1, 'one large one waits for company')
  queue.push({ ...entry(false, 12), bytes: 150 * 1024 })
  await settled()
  t.same(sent.slice(1).map(b => b.map(e => e.notification.attributes.request_id)), [['11'], ['12']], 'past 256 KiB together: sent at once, one per call')
})
