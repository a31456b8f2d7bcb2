import t from 'tap'
import { setMaxListeners } from 'node:events'
import type { Notification } from '../../notifications/message.js'
import { createThreadSender } from '../../notifications/sender-thread.js'
import { build, examples, post, splitFrame } from '../helper.js'
import { snsServer } from '../support/sns.js'
import { senderConfig as config, TOPIC } from '../support/notifications.js'

const note = (k: number, prediction: 'attack' | 'benign' = 'attack'): Notification =>
  ({ message: `{"columns":["a","prediction"],"index":[${k}],"data":[[${k},1]]}`, attributes: { prediction, model: 'm', request_id: `r${k}` } })

const signal = () => {
  const aborter = new AbortController()
  setMaxListeners(0, aborter.signal)
  return aborter
}

t.test('the sender thread publishes through the real SNS client: Publish for one, PublishBatch for more, outcomes per entry', async t => {
  const sns = await snsServer(t, { entry: e => e.attributes.request_id.value === 'r2' ? { code: 'InvalidParameter', senderFault: true } : undefined })
  const sender = createThreadSender(config(sns.url))
  t.teardown(() => sender.close())
  const { signal: s } = signal()
  t.same(await sender.send([note(0)], s), [{ status: 'published' }])
  const outcomes = await sender.send([note(1), note(2, 'benign'), note(3)], s)
  t.same(outcomes, [{ status: 'published' }, { status: 'refused', reason: 'InvalidParameter: refused' }, { status: 'published' }])
  t.same(sns.calls.map(c => c.action), ['Publish', 'PublishBatch'])
  t.same(sns.accepted.map(m => [m.topic, m.message, m.attributes.prediction.value, m.attributes.request_id.value]),
    [[TOPIC, note(0).message, 'attack', 'r0'], [TOPIC, note(1).message, 'attack', 'r1'], [TOPIC, note(3).message, 'attack', 'r3']])
  // Signed in the thread as on the main thread: SigV4 for SNS in the topic's region.
  t.match(sns.requests[0].headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/sns\/aws4_request/)
})

t.test('a call SNS fails as a whole comes back as a failed call', async t => {
  const sns = await snsServer(t, { call: () => ({ status: 503, code: 'ServiceUnavailable' }) })
  const sender = createThreadSender(config(sns.url))
  t.teardown(() => sender.close())
  t.match(await sender.send([note(0), note(1)], signal().signal), { code: 'ServiceUnavailable', splittable: false })
})

t.test('a thread that dies fails its calls as failed calls (retried by the publisher), and the next call starts another', async t => {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  const sns = await snsServer(t, { gate })
  const sender = createThreadSender(config(sns.url))
  t.teardown(() => sender.close())
  const { signal: s } = signal()
  const pending = sender.send([note(0), note(1)], s)
  while (sns.calls.length === 0) await new Promise(resolve => setTimeout(resolve, 5))
  const first = sender.thread()!
  await first.terminate()
  t.match(await pending, { code: 'SenderThreadExited', splittable: false })
  release()
  t.same(await sender.send([note(2)], s), [{ status: 'published' }])
  t.not(sender.thread(), first, 'a new thread')
})

t.test('the shutdown signal ends the calls in flight in the thread', async t => {
  const sns = await snsServer(t, { gate: new Promise(() => {}) })
  const sender = createThreadSender(config(sns.url))
  t.teardown(() => sender.close())
  const aborter = signal()
  const pending = sender.send([note(0), note(1)], aborter.signal)
  while (sns.calls.length === 0) await new Promise(resolve => setTimeout(resolve, 5))
  aborter.abort()
  const result = await pending
  t.ok(!Array.isArray(result), 'a failed call, to be left on disk by the publisher')
  // A signal already aborted ends the call at once too.
  t.ok(!Array.isArray(await sender.send([note(2)], aborter.signal)))
  await sender.close()
  t.equal(sender.thread(), undefined, 'closed: no thread')
})

t.test('NOTIFY_SENDER=inline makes the same calls on the event loop', async t => {
  for (const mode of ['thread', 'inline']) {
    const sns = await snsServer(t)
    const app = await build(t, { AWS_SNS_PREDICTIONS_TOPIC: TOPIC, AWS_SNS_HOST: sns.url, AWS_ACCESS_KEY: 'AKIDEXAMPLE', AWS_SECRET_KEY: 'secret', NOTIFY_SENDER: mode, NOTIFY_DATA_DIR: t.testdir() })
    const res = await post(app, splitFrame([examples.benign, examples.attack]))
    t.equal(res.statusCode, 200)
    while ((app.notifications.stats().sns?.published ?? 0) < 2) await new Promise(resolve => setTimeout(resolve, 10))
    t.same(sns.accepted.map(m => m.attributes.prediction.value).sort(), ['attack', 'benign'], `${mode}: one message per class`)
  }
})
