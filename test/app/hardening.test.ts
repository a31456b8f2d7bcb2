import helmet from 'helmet'
import { IncomingMessage, ServerResponse, get as httpGet } from 'node:http'
import { Socket, type AddressInfo } from 'node:net'
import t from 'tap'
import { Writable } from 'node:stream'
import { Value } from '@sinclair/typebox/value'
import { createApp } from '../../app.js'
import { ErrorResponse } from '../../schemas/common.js'
import { build, examples, post, splitFrame, PANDAS_SPLIT } from '../helper.js'
import { json, loopback } from '../support/loopback.js'

const frame = splitFrame([examples.benign, examples.attack, examples.attack, examples.benign])

t.test('API keys: /api/* needs one, health and metrics stay open', async t => {
  const app = await build(t, { API_KEYS: 'key-one, key-two' })
  const none = await post(app, frame)
  t.equal(none.statusCode, 401)
  t.ok(Value.Check(ErrorResponse, none.json()))
  t.match(none.json().message, /an API key is required/)
  t.equal(none.headers['www-authenticate'], 'Bearer')
  t.match(none.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'refusals carry a request id too')
  const wrong = await app.inject({ method: 'POST', url: '/api/predictions', headers: { 'content-type': PANDAS_SPLIT, authorization: 'Bearer key-three' }, payload: frame })
  t.equal(wrong.statusCode, 401)
  t.match(wrong.json().message, /unknown API key/)
  const bearer = await app.inject({ method: 'POST', url: '/api/predictions', headers: { 'content-type': PANDAS_SPLIT, authorization: 'Bearer key-one' }, payload: frame })
  t.same(bearer.json(), [0, 1, 1, 0])
  const header = await app.inject({ method: 'POST', url: '/api/predictions', headers: { 'content-type': PANDAS_SPLIT, 'x-api-key': 'key-two' }, payload: frame })
  t.equal(header.statusCode, 200, 'the second key works too (rotation)')
  t.equal((await app.inject('/api/model')).statusCode, 401, 'every /api route')
  for (const url of ['/', '/health', '/ready', '/ping', '/metrics', '/docs/json']) t.equal((await app.inject(url)).statusCode, 200, `${url} is open`)
})

t.test('keys and secrets stay out of the logs', async t => {
  let logs = ''
  const stream = new Writable({ write (chunk, _enc, done) { logs += chunk; done() } })
  const app = createApp({ env: { API_KEYS: 'sekrit-key-123' }, logger: { level: 'trace', stream } })
  t.teardown(() => app.close())
  await app.ready()
  await app.inject({ method: 'POST', url: '/api/predictions', headers: { 'content-type': PANDAS_SPLIT, authorization: 'Bearer sekrit-key-123' }, payload: frame })
  await app.inject({ method: 'POST', url: '/api/predictions', headers: { 'content-type': PANDAS_SPLIT, 'x-api-key': 'sekrit-key-123' }, payload: frame })
  t.match(logs, /"msg":"request"/, 'requests were logged')
  t.equal(logs.split('\n').filter(line => line.includes('"msg":"request"')).length, 2, 'one line per request')
  t.notMatch(logs, /sekrit-key-123/)
})

t.test('rate limiting: 429 with Retry-After past the limit; health is not limited', async t => {
  const app = await build(t, { RATE_LIMIT_MAX: '3' })
  for (let i = 0; i < 3; i++) t.equal((await post(app, frame)).statusCode, 200)
  const limited = await post(app, frame)
  t.equal(limited.statusCode, 429)
  t.ok(Value.Check(ErrorResponse, limited.json()))
  t.match(limited.json(), { code: 'RATE_LIMITED', message: /more than 3 requests/ })
  t.ok(Number(limited.headers['retry-after']) > 0)
  for (let i = 0; i < 5; i++) t.equal((await app.inject('/health')).statusCode, 200)
})

t.test('security headers; CORS only for configured origins', async t => {
  const app = await build(t)
  const res = await post(app, frame)
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.ok(res.headers['strict-transport-security'])
  t.notOk(res.headers['access-control-allow-origin'], 'no CORS by default')
  // Computed once at start-up: the same as helmet writes on a response of its own.
  const helmetRes = new ServerResponse(new IncomingMessage(new Socket()))
  helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } })(helmetRes.req, helmetRes, () => {})
  for (const [name, value] of Object.entries(helmetRes.getHeaders())) t.equal(res.headers[name], value, name)
  // A hijacked reply (the event stream, through a real server) carries them too.
  await app.listen({ port: 0, host: '127.0.0.1' })
  const stream = await new Promise<IncomingMessage>((resolve, reject) =>
    httpGet(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/notifications`, resolve).on('error', reject))
  t.match(stream.headers['content-type'], /^text\/event-stream/)
  t.equal(stream.headers['x-content-type-options'], 'nosniff')
  t.match(stream.headers['content-security-policy'], /default-src 'self'/)
  stream.destroy()
  const cors = await build(t, { CORS_ORIGINS: 'https://soc.example' })
  const preflight = await cors.inject({ method: 'OPTIONS', url: '/api/predictions', headers: { origin: 'https://soc.example', 'access-control-request-method': 'POST' } })
  t.equal(preflight.headers['access-control-allow-origin'], 'https://soc.example')
  const other = await cors.inject({ method: 'OPTIONS', url: '/api/predictions', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  t.notOk(other.headers['access-control-allow-origin'])
})

t.test('load shedding: over the heap threshold the API answers 503 with Retry-After, /ready tells', async t => {
  const app = await build(t, { PRESSURE_MAX_HEAP_MB: '1', PRESSURE_RETRY_AFTER_S: '7' })
  await new Promise(resolve => setTimeout(resolve, 1200)) // the first sample
  const shed = await post(app, frame)
  t.equal(shed.statusCode, 503)
  t.ok(Value.Check(ErrorResponse, shed.json()))
  t.match(shed.json(), { code: 'OVERLOADED', message: /overloaded/ })
  t.equal(shed.headers['retry-after'], '7')
  const ready = await app.inject('/ready')
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { status: 'unavailable', reason: /overloaded/ })
  t.equal((await app.inject('/health')).statusCode, 200)
  t.equal((await app.inject('/metrics')).statusCode, 200)
})

t.test('load shedding watches resident memory too (bodies and buffers live outside the heap)', async t => {
  const app = await build(t, { PRESSURE_MAX_RSS_MB: '1' })
  const shed = await post(app, frame)
  t.equal(shed.statusCode, 503)
  t.match(shed.json(), { code: 'OVERLOADED', message: /overloaded \(resident memory \d+ MB\)/ })
  t.equal((await app.inject('/ready')).statusCode, 503)
  t.equal((await app.inject('/health')).statusCode, 200)
  t.equal((await app.inject('/%68ealth')).statusCode, 200, 'a probe is known by its route, however spelled')
})

t.test('limits on columns, names and strings answer 400, naming what is over', async t => {
  const app = await build(t)
  const tooMany = { columns: Array.from({ length: 1001 }, (_, i) => `c${i}`), data: [] }
  t.match((await post(app, tooMany)).json(), { statusCode: 400, message: /columns must NOT have more than 1000 items/ })
  const longName = { columns: ['x'.repeat(300)], data: [] }
  t.match((await post(app, longName)).json(), { statusCode: 400, message: /columns\[0\] must NOT have more than 256 characters/ })
  const longCell = { columns: ['a', 'b'], data: [[1, 'y'.repeat(2000)]] }
  t.match((await post(app, longCell)).json(), { statusCode: 400, message: /row 0, column "b" must NOT have more than 1024 characters/ })
})

t.test('GET /metrics: requests, rows, predictions by class, classifier latency, process health', async t => {
  const app = await build(t)
  await post(app, frame)
  await post(app, { columns: ['a'], data: [[1, 2]] })
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  const text = res.body
  t.match(text, /http_requests_total\{method="POST",route="\/api\/predictions",status_code="200"\} 1/)
  t.match(text, /http_requests_total\{method="POST",route="\/api\/predictions",status_code="400"\} 1/)
  t.match(text, /http_request_duration_seconds_bucket\{le="0.1",method="POST",route="\/api\/predictions",status_code="200"\} 1/)
  t.match(text, /mlids_rows_classified_total\{backend="local"\} 4/)
  t.match(text, /mlids_predictions_total\{backend="local",prediction="attack"\} 2/)
  t.match(text, /mlids_predictions_total\{backend="local",prediction="benign"\} 2/)
  t.match(text, /mlids_classifier_duration_seconds_count\{backend="local"\} 1/)
  t.match(text, /nodejs_eventloop_lag_seconds/)
  t.match(text, /nodejs_heap_size_used_bytes/)
  t.match(text, /mlids_stream_subscribers 0/)
})

t.test('SageMaker faults: throttling answers 503 with Retry-After, 5xx bursts 502, and it recovers', async t => {
  let mode: 'throttle' | 'fail' | 'ok' = 'throttle'
  const sagemaker = await loopback(t, (_req, res) => {
    if (mode === 'throttle') return json(res, 429, { message: 'Rate exceeded' }, { 'x-amzn-errortype': 'ThrottlingException' })
    if (mode === 'fail') return json(res, 500, { message: 'x' }, { 'x-amzn-errortype': 'InternalFailure' })
    json(res, 200, [0, 1, 1, 0])
  })
  const app = await build(t, { AWS_REGION: 'eu-west-1', AWS_SAGEMAKER_ENDPOINT: 'ml-ids', AWS_SAGEMAKER_HOST: sagemaker.url, AWS_ACCESS_KEY: 'AKID', AWS_SECRET_KEY: 'x', SAGEMAKER_MAX_ATTEMPTS: '2' })
  const throttled = await post(app, frame)
  t.equal(throttled.statusCode, 503)
  t.match(throttled.json(), { code: 'UPSTREAM_UNAVAILABLE', message: /overloaded or not ready/ })
  t.equal(throttled.headers['retry-after'], '1')
  mode = 'fail'
  t.equal((await post(app, frame)).statusCode, 502)
  t.equal((await app.inject('/ready')).statusCode, 503, 'not ready after upstream failures')
  mode = 'ok'
  t.same((await post(app, frame)).json(), [0, 1, 1, 0], 'recovers by itself')
  t.equal((await app.inject('/ready')).statusCode, 503, 'one success does not clear the failures of the last 10 s')
  for (let i = 0; i < 6; i++) await post(app, frame)
  t.equal((await app.inject('/ready')).statusCode, 200, 'ready again once under a quarter of the last 10 s of calls failed')
  const metrics = (await app.inject('/metrics')).body
  t.match(metrics, /mlids_classifier_errors_total\{backend="sagemaker",status_code="503"\} 1/)
  t.match(metrics, /mlids_classifier_errors_total\{backend="sagemaker",status_code="502"\} 1/)
})

t.test('the Content-Security-Policy lets Swagger UI load its own scripts over plain HTTP', async t => {
  const app = await build(t)
  const page = await app.inject('/docs/')
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /script-src 'self'/)
  t.notMatch(csp, /upgrade-insecure-requests/)
  for (const src of page.body.matchAll(/<script src="([^"]+)"/g)) {
    t.notMatch(src[1], /^https?:/, `${src[1]} is same-origin`)
    t.equal((await app.inject(new URL(src[1], 'http://x/docs/').pathname)).statusCode, 200, `${src[1]} is served`)
  }
})

t.test('readiness under a 50% SageMaker failure rate stays 503: it does not flap with each success', async t => {
  let calls = 0
  const sagemaker = await loopback(t, (_req, res) => {
    if (calls++ % 2 === 0) return json(res, 500, { message: 'x' }, { 'x-amzn-errortype': 'InternalFailure' })
    json(res, 200, [0, 1, 1, 0])
  })
  const app = await build(t, { AWS_REGION: 'eu-west-1', AWS_SAGEMAKER_ENDPOINT: 'ml-ids', AWS_SAGEMAKER_HOST: sagemaker.url, AWS_ACCESS_KEY: 'AKID', AWS_SECRET_KEY: 'x', SAGEMAKER_MAX_ATTEMPTS: '1', SAGEMAKER_BATCHING: 'off' })
  const samples: number[] = []
  for (let i = 0; i < 10; i++) {
    await post(app, frame)
    samples.push((await app.inject('/ready')).statusCode)
  }
  t.equal(calls, 10)
  t.same(samples, Array(10).fill(503))
})
