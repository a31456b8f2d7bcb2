import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { createApp } from '../../app.js'
import { endpointName, parseAnswer } from '../../classifier/sagemaker.js'
import { build, examples, post, splitFrame, PANDAS_SPLIT } from '../helper.js'
import { json, loopback, mlflowEndpoint, type SplitFrame } from '../support/loopback.js'

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'

function sagemakerEnv (url: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    AWS_REGION: 'eu-west-1',
    AWS_SAGEMAKER_ENDPOINT: '/endpoints/ml-ids-prod/invocations',
    AWS_SAGEMAKER_HOST: url,
    AWS_ACCESS_KEY: 'AKIDEXAMPLE',
    AWS_SECRET_KEY: SECRET,
    ...extra,
  }
}

const frame = splitFrame([examples.benign, examples.attack, examples.benign], { extra: { timestamp: '21/02/2018 10:15:06' } })

/** What SageMaker answers when the model container itself fails: HTTP 424, x-amzn-errortype ModelError. */
const modelError = (originalStatus: number) => ({
  ErrorCode: 'CLIENT_ERROR_FROM_MODEL',
  OriginalStatusCode: originalStatus,
  OriginalMessage: 'secret internals of the model',
  LogStreamArn: 'arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/ml-ids-prod',
  message: 'Received client error (400) from model with message "bad". See https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logEventViewer:group=/aws/sagemaker/Endpoints/ml-ids-prod in account 123456789012 for more information.',
})

t.test('InvokeEndpoint: path, content type, body as pandas split, SigV4 signature', async t => {
  const sagemaker = await loopback(t, (_req, res) => json(res, 200, [0, 1, 0]))
  const app = await build(t, sagemakerEnv(sagemaker.url))
  const res = await post(app, frame)
  t.equal(res.statusCode, 200)
  t.same(res.json(), [0, 1, 0])
  t.equal(sagemaker.requests.length, 1)
  const [call] = sagemaker.requests
  t.equal(call.method, 'POST')
  t.equal(call.url, '/endpoints/ml-ids-prod/invocations', 'the endpoint name from the earlier path form')
  t.equal(call.headers['content-type'], PANDAS_SPLIT)
  t.same(JSON.parse(call.body), { columns: frame.columns, data: frame.data }, 'the rows are forwarded as pandas split')
  t.match(call.headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/sagemaker\/aws4_request, SignedHeaders=.*, Signature=[0-9a-f]{64}$/)
  t.match(call.headers['x-amz-date'], /^\d{8}T\d{6}Z$/)
  t.equal(call.headers.connection, 'keep-alive', 'connections are kept alive')
})

t.test('with batching off, the frame is forwarded exactly as sent, index included', async t => {
  const sagemaker = await loopback(t, (_req, res) => json(res, 200, [0, 1, 0]))
  const app = await build(t, sagemakerEnv(sagemaker.url, { SAGEMAKER_BATCHING: 'off' }))
  t.same((await post(app, frame)).json(), [0, 1, 0])
  t.same(JSON.parse(sagemaker.requests[0].body), frame)
})

t.test('both MLflow answer shapes, and column vectors', async t => {
  const sagemaker = await loopback(t, (_req, res) => json(res, 200, { predictions: [1, 0, 1] }))
  const app = await build(t, sagemakerEnv(sagemaker.url, { AWS_SAGEMAKER_ENDPOINT: 'ml-ids-prod' }))
  t.same((await post(app, frame)).json(), [1, 0, 1], 'MLflow 2.x {"predictions": [...]}')
  sagemaker.answer((_req, res) => json(res, 200, [[1], [1], [0]]))
  t.same((await post(app, frame)).json(), [1, 1, 0], 'one-column lists')
  sagemaker.answer((_req, res) => json(res, 200, [0.2, 0.7, true]))
  t.same((await post(app, frame)).json(), [0, 1, 1], 'probabilities and booleans')
  t.equal(sagemaker.requests[0].url, '/endpoints/ml-ids-prod/invocations', 'a plain endpoint name')
  t.same((await post(app, { ...frame, index: [], data: [] })).json(), [], 'zero rows need no call')
  t.equal(sagemaker.requests.length, 3)
})

t.test('unusable answers are 502, without upstream details', async t => {
  const sagemaker = await loopback(t, (_req, res) => json(res, 200, [0, 1]))
  const app = await build(t, sagemakerEnv(sagemaker.url, { SAGEMAKER_MAX_ATTEMPTS: '1' }))
  const cases: Array<[string, Parameters<typeof sagemaker.answer>[0], RegExp]> = [
    ['wrong length', (_req, res) => json(res, 200, [0, 1]), /answered 2 predictions for 3 rows/],
    ['garbled', (_req, res) => json(res, 200, '<html>oops'), /not JSON/],
    ['wrong shape', (_req, res) => json(res, 200, { result: [0, 1, 0] }), /neither a list nor/],
    ['not a prediction', (_req, res) => json(res, 200, [0, 'x', 1]), /row 1 is not 0, 1 or a probability/],
    ['500', (_req, res) => json(res, 500, { message: 'internal' }, { 'x-amzn-errortype': 'InternalFailure' }), /failed \(status 500, InternalFailure\)/],
    ['model failure', (_req, res) => json(res, 424, modelError(500), { 'x-amzn-errortype': 'ModelError' }), /failed \(status 424, ModelError\)/],
    ['no such endpoint', (_req, res) => json(res, 400, { message: 'Endpoint ml-ids-prod of account 123456789012 not found.' }, { 'x-amzn-errortype': 'ValidationError' }), /failed \(status 400, ValidationError\)/],
  ]
  for (const [name, handler, message] of cases) {
    sagemaker.answer(handler)
    const res = await post(app, frame)
    t.equal(res.statusCode, 502, name)
    t.match(res.json(), { statusCode: 502, error: 'Bad Gateway', code: 'UPSTREAM_ERROR', message }, name)
    t.notMatch(res.body, /arn:|123456789012|AKIDEXAMPLE|wJalr|secret internals|at .*\.js/, `${name}: no ARN, account, key or stack`)
  }
})

t.test('the model rejecting the input is the client\'s 400', async t => {
  const sagemaker = await loopback(t, (_req, res) => json(res, 424, modelError(400), { 'x-amzn-errortype': 'ModelError' }))
  const app = await build(t, sagemakerEnv(sagemaker.url))
  const res = await post(app, frame)
  t.equal(res.statusCode, 400)
  t.match(res.json().message, /the model rejected the input \(status 400\)/)
  t.notMatch(res.body, /arn:|123456789012|secret internals/)
  t.equal(sagemaker.requests.length, 1, 'not retried')
  t.equal((await app.inject('/ready')).statusCode, 200, 'the endpoint is still ready')
})

t.test('5xx and throttling are retried in the standard mode, then succeed', async t => {
  let calls = 0
  const sagemaker = await loopback(t, (_req, res) => {
    calls++
    if (calls === 1) return json(res, 503, { message: 'busy' }, { 'x-amzn-errortype': 'ServiceUnavailable' })
    if (calls === 2) return json(res, 429, { message: 'slow down' }, { 'x-amzn-errortype': 'ThrottlingException' })
    json(res, 200, [1, 1, 1])
  })
  const app = await build(t, sagemakerEnv(sagemaker.url))
  const res = await post(app, frame)
  t.equal(res.statusCode, 200)
  t.same(res.json(), [1, 1, 1])
  t.equal(sagemaker.requests.length, 3)
})

t.test('SAGEMAKER_MAX_ATTEMPTS bounds the retries', async t => {
  const sagemaker = await loopback(t, (_req, res) => json(res, 500, { message: 'x' }, { 'x-amzn-errortype': 'InternalFailure' }))
  const app = await build(t, sagemakerEnv(sagemaker.url, { SAGEMAKER_MAX_ATTEMPTS: '2' }))
  t.equal((await post(app, frame)).statusCode, 502)
  t.equal(sagemaker.requests.length, 2)
})

t.test('a slow endpoint answers 504 after the configured timeout, and /ready tells', async t => {
  const sagemaker = await loopback(t, () => { /* never answers */ })
  const app = await build(t, sagemakerEnv(sagemaker.url, { SAGEMAKER_TIMEOUT_MS: '200', SAGEMAKER_MAX_ATTEMPTS: '1' }))
  t.equal((await app.inject('/ready')).statusCode, 200, 'ready before any failure')
  const started = Date.now()
  const res = await post(app, frame)
  t.equal(res.statusCode, 504)
  t.match(res.json(), { code: 'UPSTREAM_TIMEOUT', message: /did not answer in time/ })
  t.ok(Date.now() - started < 5000, 'promptly')
  const ready = await app.inject('/ready')
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { status: 'unavailable', backend: 'sagemaker', reason: /did not answer in time/ })
  t.equal((await app.inject('/health')).statusCode, 200, 'still alive')
  // One good answer does not make it ready again; once under a quarter of the last 10 s failed, it is.
  sagemaker.answer((_req, res) => json(res, 200, [0, 0, 0]))
  t.equal((await post(app, frame)).statusCode, 200)
  t.equal((await app.inject('/ping')).statusCode, 503)
  for (let i = 0; i < 3; i++) t.equal((await post(app, frame)).statusCode, 200)
  t.equal((await app.inject('/ping')).statusCode, 200)
})

t.test('connection refused is a 502, and the process stays up', async t => {
  // Port 9 (discard) has no listener here.
  const app = await build(t, sagemakerEnv('http://127.0.0.1:9', { SAGEMAKER_MAX_ATTEMPTS: '1' }))
  const res = await post(app, frame)
  t.equal(res.statusCode, 502)
  t.match(res.json().message, /the SageMaker endpoint failed \(ECONNREFUSED\)/)
})

t.test('/api/model describes the endpoint', async t => {
  const sagemaker = await loopback(t, () => {})
  const app = await build(t, sagemakerEnv(sagemaker.url))
  t.same((await app.inject('/api/model')).json(), {
    backend: 'sagemaker',
    name: 'ml-ids-prod',
    threshold: 0.5,
    labels: { 0: 'benign', 1: 'attack' },
    sagemaker: { endpoint: 'ml-ids-prod', region: 'eu-west-1', input_format: 'pandas-split' },
  })
})

t.test('secrets never reach the logs', async t => {
  const sagemaker = await loopback(t, (_req, res) => json(res, 500, { message: 'x' }, { 'x-amzn-errortype': 'InternalFailure' }))
  let logs = ''
  const stream = new Writable({ write (chunk, _enc, done) { logs += chunk; done() } })
  const app = createApp({ env: sagemakerEnv(sagemaker.url, { SAGEMAKER_MAX_ATTEMPTS: '1' }), logger: { level: 'trace', stream } })
  t.teardown(() => app.close())
  await app.ready()
  await post(app, frame)
  t.match(logs, /request failed/, 'the failure was logged')
  t.notMatch(logs, SECRET)
})

t.test('endpoint names in both forms', async t => {
  t.equal(endpointName('/endpoints/abc-1/invocations'), 'abc-1')
  t.equal(endpointName('abc-1'), 'abc-1')
  t.throws(() => parseAnswer('[0]', 2), /1 predictions for 2 rows/)
})

t.test('concurrent requests share InvokeEndpoint calls and each gets its own predictions', async t => {
  // The stand-in model answers from the rows themselves: 1 where flow_iat_min is odd.
  const sagemaker = await loopback(t, (req, res) => {
    const body = JSON.parse(req.body)
    const at = body.columns.indexOf('flow_iat_min')
    setTimeout(() => json(res, 200, body.data.map((row: number[]) => row[at] % 2)), 20)
  })
  const app = await build(t, sagemakerEnv(sagemaker.url))
  let id = 0
  const frames = Array.from({ length: 60 }, () => splitFrame(Array.from({ length: 1 + (id % 7) }, () => ({ ...examples.benign, flow_iat_min: id++ }))))
  const answers = await Promise.all(frames.map(f => post(app, f)))
  answers.forEach((res, i) => t.same(res.json(), frames[i].data.map(row => (row[frames[i].columns.indexOf('flow_iat_min')] as number) % 2), `request ${i}`, { diagnostic: false }))
  t.ok(sagemaker.requests.length < frames.length / 2, `${sagemaker.requests.length} calls for ${frames.length} requests`)
})

/** The stand-in model's answer: 1 where flow_iat_min is odd, as a label or as a probability. */
const oddIat = (as: 'labels' | 'probabilities') => (f: SplitFrame) => {
  const at = f.columns.indexOf('flow_iat_min')
  return f.data.map(row => (row[at] as number) % 2 === 1 ? (as === 'labels' ? 1 : 0.75) : (as === 'labels' ? 0 : 0.25))
}
const oddFrame = splitFrame([{ ...examples.benign, flow_iat_min: 1 }, { ...examples.benign, flow_iat_min: 2 }, { ...examples.benign, flow_iat_min: 3 }])

function logged (t: Test, env: NodeJS.ProcessEnv) {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done() } })
  const app = createApp({ env, logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  return { app, lines }
}

t.test('MLflow 1.x endpoint through the real SDK: auto keeps pandas-split, and says so once', async t => {
  const sagemaker = await loopback(t, mlflowEndpoint('1.x', oddIat('labels')))
  const { app, lines } = logged(t, sagemakerEnv(sagemaker.url))
  await app.ready()
  t.same((await post(app, oddFrame)).json(), [1, 0, 1])
  t.same((await post(app, oddFrame)).json(), [1, 0, 1])
  t.equal(sagemaker.requests.length, 2, 'one call per request')
  for (const call of sagemaker.requests) t.equal(call.headers['content-type'], PANDAS_SPLIT)
  t.equal(lines.filter(l => /MLflow 1\.x/.test(String(l.msg))).length, 1)
  t.match((await app.inject('/api/model')).json().sagemaker, { input_format: 'pandas-split' })
})

t.test('MLflow 2.x endpoint through the real SDK: auto switches at the first refusal, remembers and logs it', async t => {
  const sagemaker = await loopback(t, mlflowEndpoint('2.x', oddIat('labels')))
  const { app, lines } = logged(t, sagemakerEnv(sagemaker.url))
  await app.ready()
  t.same((await post(app, oddFrame)).json(), [1, 0, 1], 'the first request is answered')
  t.equal(sagemaker.requests.length, 2, 'refused once, then sent as 2.x wants')
  t.equal(sagemaker.requests[0].headers['content-type'], PANDAS_SPLIT)
  t.equal(sagemaker.requests[1].headers['content-type'], 'application/json')
  t.same(JSON.parse(sagemaker.requests[1].body), { dataframe_split: { columns: oddFrame.columns, data: oddFrame.data } })
  t.same((await post(app, oddFrame)).json(), [1, 0, 1])
  t.equal(sagemaker.requests.length, 3, 'remembered: no more refusals')
  t.match(lines.find(l => /MLflow 2\.x/.test(String(l.msg))), { inputFormat: 'dataframe_split', endpoint: 'ml-ids-prod' })
  t.match((await app.inject('/api/model')).json().sagemaker, { input_format: 'dataframe_split' })
  t.equal((await app.inject('/ready')).statusCode, 200, 'the refusal is not an upstream failure')
})

t.test('MLflow 2.x: concurrent first requests, batched, all answered after the switch', async t => {
  const sagemaker = await loopback(t, mlflowEndpoint('2.x', oddIat('labels')))
  const app = await build(t, sagemakerEnv(sagemaker.url, { SAGEMAKER_BATCH_MAX_ROWS: '3' }))
  const answers = await Promise.all(Array.from({ length: 8 }, () => post(app, oddFrame)))
  answers.forEach((res, i) => t.same(res.json(), [1, 0, 1], `request ${i}`, { diagnostic: false }))
})

t.test('a 2.x server that ignores the format parameter is detected from its 400 asking for dataframe_split', async t => {
  const twoX = mlflowEndpoint('2.x', oddIat('labels'))
  const sagemaker = await loopback(t, (req, res) => twoX({ ...req, headers: { ...req.headers, 'content-type': 'application/json' } }, res))
  const app = await build(t, sagemakerEnv(sagemaker.url))
  t.same((await post(app, oddFrame)).json(), [1, 0, 1])
  t.equal(sagemaker.requests.length, 2)
  t.match(JSON.parse(sagemaker.requests[1].body), { dataframe_split: {} })
})

t.test('SAGEMAKER_INPUT_FORMAT=dataframe_split sends 2.x bodies from the start; pandas-split never switches', async t => {
  const sagemaker = await loopback(t, mlflowEndpoint('2.x', oddIat('labels')))
  const app = await build(t, sagemakerEnv(sagemaker.url, { SAGEMAKER_INPUT_FORMAT: 'dataframe_split' }))
  t.same((await post(app, oddFrame)).json(), [1, 0, 1])
  t.equal(sagemaker.requests.length, 1)
  const fixed = await build(t, sagemakerEnv(sagemaker.url, { SAGEMAKER_INPUT_FORMAT: 'pandas-split' }))
  const res = await post(fixed, oddFrame)
  t.equal(res.statusCode, 502, 'a configuration to fix, not the client\'s error')
  t.match(res.json().message, /^the SageMaker endpoint runs MLflow 2\.x, which refuses pandas-split frames: set SAGEMAKER_INPUT_FORMAT to auto or dataframe_split$/)
  t.equal(sagemaker.requests.length, 2, 'not retried in another format')
  const oneX = await loopback(t, mlflowEndpoint('1.x', oddIat('labels')))
  const wrong = await build(t, sagemakerEnv(oneX.url, { SAGEMAKER_INPUT_FORMAT: 'dataframe_split' }))
  t.equal((await post(wrong, oddFrame)).statusCode, 400, 'a 1.x endpoint refuses 2.x bodies: the 400 says so')
  await t.rejects(build(t, sagemakerEnv(sagemaker.url, { SAGEMAKER_INPUT_FORMAT: 'records' })), /SAGEMAKER_INPUT_FORMAT must be one of .* \(given "records"\)/)
})

for (const generation of ['1.x', '2.x'] as const) {
  t.test(`scores from a ${generation} endpoint that returns probabilities; ATTACK_THRESHOLD applies`, async t => {
    const sagemaker = await loopback(t, mlflowEndpoint(generation, oddIat('probabilities')))
    const app = await build(t, sagemakerEnv(sagemaker.url))
    const scores = await app.inject({ method: 'POST', url: '/api/scores', headers: { 'content-type': PANDAS_SPLIT }, payload: JSON.stringify(oddFrame) })
    t.equal(scores.statusCode, 200)
    t.same(scores.json(), { model: 'ml-ids-prod', threshold: 0.5, scores: [0.75, 0.25, 0.75], predictions: [1, 0, 1] })
    const strict = await build(t, sagemakerEnv(sagemaker.url, { ATTACK_THRESHOLD: '0.8' }))
    t.same((await post(strict, oddFrame)).json(), [0, 0, 0], 'probabilities are read at ATTACK_THRESHOLD')
    t.match((await strict.inject('/api/model')).json(), { threshold: 0.8 })
    const csv = await app.inject({ method: 'POST', url: '/api/scores', headers: { 'content-type': 'text/csv' }, payload: [oddFrame.columns.join(','), ...oddFrame.data.map(r => r.map(v => v ?? '').join(','))].join('\n') })
    t.same(csv.json().scores, [0.75, 0.25, 0.75], 'CSV in, forwarded as JSON')
  })

  t.test(`scores from a ${generation} endpoint that returns labels: a clear 501`, async t => {
    const sagemaker = await loopback(t, mlflowEndpoint(generation, oddIat('labels')))
    const app = await build(t, sagemakerEnv(sagemaker.url))
    const res = await app.inject({ method: 'POST', url: '/api/scores', headers: { 'content-type': PANDAS_SPLIT }, payload: JSON.stringify(oddFrame) })
    t.equal(res.statusCode, 501)
    t.match(res.json(), { statusCode: 501, code: 'SCORES_UNAVAILABLE', message: /ml-ids-prod answers labels, not probabilities/ })
    t.same((await post(app, oddFrame)).json(), [1, 0, 1], '/api/predictions still works')
  })
}
