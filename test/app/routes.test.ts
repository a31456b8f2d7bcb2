import t from 'tap'
import { build, metadata } from '../helper.js'
import { createApp } from '../../app.js'
import { compiledSerializers } from '../../schemas/compilers.js'

// First in this file: the first app of the process compiles them.
t.test('response serializers are compiled once per distinct schema and shared by the apps of a process', async t => {
  const first = createApp({ env: { WORKERS: '0', NOTIFY_SENDER: 'inline' } })
  t.teardown(() => first.close())
  let responses = 0
  first.addHook('onRoute', route => { responses += Object.keys(route.schema?.response ?? {}).length })
  const before = compiledSerializers()
  await first.ready()
  const compiled = compiledSerializers() - before
  t.ok(compiled < responses / 2, `${compiled} serializers compiled for ${responses} route responses`)
  const second = await build(t)
  t.equal(compiledSerializers() - before, compiled, 'a second app compiles none')
  // They still serialize by their schema: an error and a success.
  const bad = await second.inject({ method: 'POST', url: '/api/predictions', headers: { 'content-type': 'application/json' }, payload: '{"columns":["a"],"data":[[1]]}' })
  t.equal(bad.statusCode, 400)
  t.same(Object.keys(bad.json()).sort(), ['code', 'error', 'message', 'statusCode'])
  t.same((await first.inject('/health')).json(), { status: 'ok' })
})

t.test('GET / answers the service name', async t => {
  const app = await build(t)
  const res = await app.inject('/')
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'ML-IDS API')
  t.match(res.headers['content-type'], /^text\/plain/)
})

t.test('liveness, readiness and SageMaker\'s /ping', async t => {
  const app = await build(t)
  t.same((await app.inject('/health')).json(), { status: 'ok' })
  for (const url of ['/ready', '/ping']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200, url)
    t.same(res.json(), { status: 'ok', backend: 'local' }, url)
  }
})

t.test('GET /api/model describes the embedded model from its metadata', async t => {
  const app = await build(t)
  const res = await app.inject('/api/model')
  t.equal(res.statusCode, 200)
  const info = res.json()
  t.match(info, {
    backend: 'local',
    name: metadata.name,
    version: metadata.version,
    threshold: metadata.threshold,
    labels: { 0: 'benign', 1: 'attack' },
    training: { rows: 1180, command: /training\/train\.py/ },
    cv_metrics: { accuracy: Number, precision: Number, recall: Number, false_positive_rate: Number },
  })
  t.same(info.features, metadata.features)
  t.same(info.preprocessing, metadata.preprocessing)
})

t.test('GET /api/model serves the model card\'s evaluations whole: per family, what each measures, the operating table', async t => {
  const app = await build(t)
  const info = (await app.inject('/api/model')).json()
  t.same(info.cv_metrics, metadata.cv_metrics, 'day-grouped cross-validation, per family')
  t.same(info.operating_points, metadata.operating_points)
  t.same(info.holdout_metrics, metadata.holdout_metrics)
  t.same(info.holdout_metrics_days_unseen, metadata.holdout_metrics_days_unseen)
  t.match(info.holdout_metrics, { measures: String, by_family: Array })
  t.match(info.holdout_metrics_days_unseen, { measures: String, model: { version: String, training: /--exclude-days/ } })
  t.match(info.training, { excluded_days: [] })
})

t.test('request ids: taken from x-request-id, or made up, and returned', async t => {
  const app = await build(t)
  const given = await app.inject({ url: '/health', headers: { 'x-request-id': 'abc-123' } })
  t.equal(given.headers['x-request-id'], 'abc-123')
  const made = await app.inject('/health')
  t.match(made.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  const hostile = await app.inject({ url: '/health', headers: { 'x-request-id': 'a b\n{"level":60}' } })
  t.match(hostile.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'a value unfit for logs is replaced')
})
