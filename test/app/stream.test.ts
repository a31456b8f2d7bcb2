import t, { type Test } from 'tap'
import { get, type IncomingMessage } from 'node:http'
import { createApp } from '../../app.js'
import { examples, post, splitFrame } from '../helper.js'

const { benign, attack } = examples

async function listening (t: Test, env: NodeJS.ProcessEnv = {}) {
  const app = createApp({ env })
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url }
}

/** A subscriber: connects, and collects the `prediction` events' data. */
async function subscribe (url: string, opts: { read?: boolean } = {}) {
  const events: any[] = []
  let buffer = ''
  const response = await new Promise<IncomingMessage>((resolve, reject) => get(url, resolve).on('error', reject))
  if (opts.read !== false) {
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => {
      buffer += chunk
      let end
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = block.split('\n').find(line => line.startsWith('data: '))
        if (block.includes('event: prediction') && data) events.push(JSON.parse(data.slice(6)))
      }
    })
  } else {
    response.pause()
  }
  return { response, events, ended: new Promise(resolve => response.on('close', resolve)) }
}

async function until (condition: () => boolean, timeoutMs = 5000) {
  const started = Date.now()
  while (!condition() && Date.now() - started < timeoutMs) await new Promise(resolve => setTimeout(resolve, 10))
}

t.test('a subscriber receives the attacks of requests made after it connected', async t => {
  const { app, url } = await listening(t)
  const subscriber = await subscribe(`${url}/api/notifications`)
  t.equal(subscriber.response.statusCode, 200)
  t.match(subscriber.response.headers['content-type'], /^text\/event-stream/)
  const res = await post(app, splitFrame([benign, attack, benign]))
  // A second request's attack: once it has arrived, anything the first request sent has arrived too.
  const second = await post(app, splitFrame([attack]))
  await until(() => subscriber.events.some(e => e.attributes.request_id === second.headers['x-request-id']))
  t.same(subscriber.events.map(e => e.attributes.request_id), [res.headers['x-request-id'], second.headers['x-request-id']], 'the attacks only, one event per request')
  const [event] = subscriber.events
  t.match(event.attributes, { prediction: 'attack', model: 'cic-ids2018-xgb', request_id: res.headers['x-request-id'], rows: '1' })
  t.same(event.message.index, [1])
  t.equal(event.message.columns.at(-1), 'prediction')
  t.equal(event.message.data[0].at(-1), 1)
  subscriber.response.destroy()
})

t.test('several subscribers; include=all gets every prediction', async t => {
  const { app, url } = await listening(t)
  const attacks = await subscribe(`${url}/api/notifications`)
  const all = await subscribe(`${url}/api/notifications?include=all`)
  await until(() => app.notifications.stats().stream.subscribers === 2)
  await post(app, splitFrame([benign, attack, attack]))
  await until(() => all.events.length === 2 && attacks.events.length === 1)
  t.same(all.events.map(e => [e.attributes.prediction, e.message.index]), [['benign', [0]], ['attack', [1, 2]]])
  t.same(attacks.events.map(e => [e.attributes.prediction, e.message.index]), [['attack', [1, 2]]])
  attacks.response.destroy()
  all.response.destroy()
  await until(() => app.notifications.stats().stream.subscribers === 0)
  t.equal(app.notifications.stats().stream.subscribers, 0, 'disconnected subscribers are forgotten')
})

t.test('NOTIFY_GROUPING=row: one event per row', async t => {
  const { app, url } = await listening(t, { NOTIFY_GROUPING: 'row' })
  const all = await subscribe(`${url}/api/notifications?include=all`)
  await post(app, splitFrame([benign, attack, attack]))
  await until(() => all.events.length === 3)
  t.same(all.events.map(e => [e.attributes.prediction, e.message.index]), [['benign', [0]], ['attack', [1]], ['attack', [2]]])
  all.response.destroy()
})

t.test('NOTIFY=attacks holds for the stream too', async t => {
  const { app, url } = await listening(t, { NOTIFY: 'attacks' })
  const all = await subscribe(`${url}/api/notifications?include=all`)
  const res = await post(app, splitFrame([benign, attack]))
  const second = await post(app, splitFrame([attack]))
  await until(() => all.events.some(e => e.attributes.request_id === second.headers['x-request-id']))
  t.same(all.events.map(e => [e.attributes.request_id, e.attributes.prediction]), [[res.headers['x-request-id'], 'attack'], [second.headers['x-request-id'], 'attack']], 'no benign event before the last attack')
  all.response.destroy()
})

t.test('a bad include is a 400', async t => {
  const { app } = await listening(t)
  const res = await app.inject('/api/notifications?include=benign')
  t.equal(res.statusCode, 400)
  t.match(res.json().message, /include/)
})

t.test('a subscriber that does not read is dropped, not buffered without bound', async t => {
  const { app, url } = await listening(t, { SSE_MAX_BUFFER_BYTES: '65536' })
  const slow = await subscribe(`${url}/api/notifications?include=all`, { read: false })
  await until(() => app.notifications.stats().stream.subscribers === 1)
  const frame = splitFrame(Array(2000).fill(attack))
  for (let i = 0; i < 10 && app.notifications.stats().stream.dropped_subscribers === 0; i++) await post(app, frame)
  t.equal(app.notifications.stats().stream.dropped_subscribers, 1)
  t.equal(app.notifications.stats().stream.subscribers, 0)
  slow.response.destroy()
})

t.test('closing the server ends the streams', async t => {
  const app = createApp({ env: {} })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const subscriber = await subscribe(`${url}/api/notifications`)
  await app.close()
  await subscriber.ended
  t.pass('the stream ended and close returned')
})

t.test('each event is one valid JSON document whatever the body\'s spelling (pretty, CRLF, tabs), through a listening server', async t => {
  const { url } = await listening(t)
  const subscriber = await subscribe(`${url}/api/notifications?include=all`)
  const frame = splitFrame([benign, attack])
  const spellings = [JSON.stringify(frame, null, 2).replace(/\n/g, '\r\n'), JSON.stringify(frame).replace(/,/g, ',\t\n')]
  for (const body of spellings) {
    const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    t.equal(res.status, 200)
  }
  await until(() => subscriber.events.length >= 4)
  // subscribe() parses each event's single data line with JSON.parse: a raw newline would have split it.
  t.equal(subscriber.events.length, 4, 'every event parsed')
  for (const e of subscriber.events) t.same(e.message.data[0].slice(0, -1), JSON.parse(JSON.stringify(e.message.index[0] === 0 ? frame.data[0] : frame.data[1])))
  subscriber.response.destroy()
})

t.test('HEAD on the stream answers its headers and ends', async t => {
  const { url } = await listening(t)
  const res = await fetch(`${url}/api/notifications`, { method: 'HEAD', signal: AbortSignal.timeout(3000) })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/event-stream/)
  t.equal(await res.text(), '', 'no body, and the response ended')
})
