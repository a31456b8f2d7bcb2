import t from 'tap'
import Fastify from 'fastify'
import { build, post } from '../helper.js'
import env from '../../plugins/external/env.js'
import errors from '../../plugins/app/errors.js'
import { handlingOf, InvalidInputError, NotificationsBackloggedError, OverloadedError, UpstreamError, UpstreamUnavailableError } from '../../errors.js'

t.test('the catalogue says how each error is answered', async t => {
  t.match(handlingOf(new InvalidInputError('x')), { exposed: true, expected: false })
  t.match(handlingOf(new UpstreamError('x')), { exposed: true, expected: false })
  t.match(handlingOf(new UpstreamUnavailableError('x')), { exposed: true, expected: true, retryAfter: 1 })
  t.match(handlingOf(new OverloadedError('x')), { retryAfter: 'pressure' })
  t.equal(handlingOf(new Error('a bug')), undefined, 'anything else is not of the catalogue')
})

t.test('an empty JSON body is answered EMPTY_BODY, not Fastify\'s internal code', async t => {
  const app = await build(t)
  const res = await post(app, '', 'application/json')
  t.equal(res.statusCode, 400)
  t.match(res.json(), { code: 'EMPTY_BODY', message: /the body is empty but the content type says "application\/json"/ })
})

t.test('the handler takes exposure, logging and Retry-After from the catalogue entry', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(env, { env: { PRESSURE_RETRY_AFTER_S: '7' } })
  await app.register(errors)
  app.get('/backlogged', async () => { throw new NotificationsBackloggedError('the journal is full') })
  app.get('/bug', async () => { throw Object.assign(new Error('secret internals'), { statusCode: 503 }) })
  const backlogged = await app.inject('/backlogged')
  t.equal(backlogged.statusCode, 503)
  t.equal(backlogged.headers['retry-after'], '7')
  t.match(backlogged.json(), { code: 'NOTIFICATIONS_BACKLOGGED', message: 'predictions are paused: the journal is full' })
  const bug = await app.inject('/bug')
  t.equal(bug.statusCode, 503, 'its status stays')
  t.match(bug.json(), { code: 'INTERNAL_ERROR', message: 'the server failed to answer: the error was logged' })
  t.notMatch(bug.body, /secret/)
})
