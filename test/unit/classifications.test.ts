import t from 'tap'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import classifications, { type Classified } from '../../plugins/app/classifications.js'
import { UpstreamError } from '../../errors.js'

const frame = { columns: ['x'], data: [[1], [2]] }

// The bodies plugin's `request.hold`, which classifications runs the work in, without a body budget.
const bodies = fp(async fastify => {
  fastify.decorateRequest('hold', function <T>(work: (signal: AbortSignal) => Promise<T>) { return work(new AbortController().signal) })
}, { name: 'bodies' })

t.test('a route that classifies publishes each answered request, and its guards run first', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(bodies)
  await app.register(classifications)
  const seen: Classified[] = []
  const failures: number[] = []
  let refuse = false
  app.classifications.on('classified', classified => seen.push(classified))
  app.classifications.on('failed', statusCode => failures.push(statusCode))
  app.classifications.guard(() => { if (refuse) throw Object.assign(new Error('paused'), { statusCode: 503 }) })
  let fail = false
  app.post('/classify', { config: { classifies: true } }, async request => request.classify(frame, async () => {
    if (fail) throw new UpstreamError('down')
    return [0, 1] as const as Array<0 | 1>
  }))
  app.post('/other', async () => 'not classified')

  t.same((await app.inject({ method: 'POST', url: '/classify' })).json(), [0, 1])
  t.equal(seen.length, 1)
  t.match(seen[0], { frame, predictions: [0, 1] })
  t.type(seen[0].seconds, 'number')
  await app.inject({ method: 'POST', url: '/other' })
  t.equal(seen.length, 1, 'a route that does not classify publishes nothing')

  fail = true
  t.equal((await app.inject({ method: 'POST', url: '/classify' })).statusCode, 502)
  t.same(failures, [502])
  t.equal(seen.length, 1)

  refuse = true
  t.equal((await app.inject({ method: 'POST', url: '/classify' })).statusCode, 503)
  t.equal((await app.inject({ method: 'POST', url: '/other' })).statusCode, 200, 'guards cover only routes that classify')
})

t.test('classifying in a route that does not say so is a bug, caught at once', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(bodies)
  await app.register(classifications)
  app.post('/sneaky', async request => request.classify(frame, async () => [0, 0] as Array<0 | 1>))
  t.equal((await app.inject({ method: 'POST', url: '/sneaky' })).statusCode, 500)
})
