import t from 'tap'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import openapiTS, { astToString } from 'openapi-typescript'
import ts from 'typescript'
import YAML from 'yaml'
import { generateSpec, specPath } from '../scripts/write-spec.js'
import { build } from './helper.js'

t.test('api-spec.yaml is what the app generates (run `npm run spec` after changing a route or schema)', async t => {
  t.equal(readFileSync(specPath, 'utf8'), await generateSpec())
})

t.test('the spec is OpenAPI 3.1 and documents every route and error status', async t => {
  const spec = YAML.parse(readFileSync(specPath, 'utf8'))
  t.equal(spec.openapi, '3.1.0')
  t.same(Object.keys(spec.paths).sort(), ['/', '/api/drift', '/api/explanations', '/api/model', '/api/notifications', '/api/notifications/stats', '/api/predictions', '/api/scores', '/dashboard', '/health', '/invocations', '/metrics', '/ping', '/ready', '/version'])
  t.ok(spec.paths['/api/notifications'].get.responses['200'].content['text/event-stream'], 'the stream is documented as text/event-stream')
  const predictions = spec.paths['/api/predictions'].post
  // One shared body per JSON shape, application/json first: the default generators send (orval takes
  // the first media type of a referenced body, hey-api the first JSON one).
  t.same(predictions.requestBody, { $ref: '#/components/requestBodies/FlowsPandasSplitFrame' })
  const flows = spec.components.requestBodies.FlowsPandasSplitFrame
  t.same(Object.keys(flows.content), ['application/json', 'application/json; format=pandas-split', 'text/csv'])
  t.equal(flows.content['text/csv'].schema.type, 'string')
  t.same(spec.paths['/invocations'].post.requestBody, { $ref: '#/components/requestBodies/FlowsMlflowRequest' })
  t.same(Object.keys(spec.components.requestBodies.FlowsMlflowRequest.content), ['application/json', 'text/csv'])
  t.same(Object.keys(spec.paths['/api/scores'].post.responses).sort(), ['200', '400', '401', '408', '413', '415', '429', '501', '502', '503', '504'])
  t.same(Object.keys(predictions.responses).sort(), ['200', '400', '401', '408', '413', '415', '429', '502', '503', '504'])
  for (const status of ['400', '401', '408', '413', '415', '429', '502', '503', '504']) {
    t.equal(predictions.responses[status].content['application/json'].schema.$ref, '#/components/schemas/ErrorResponse', status)
  }
  const explanations = spec.paths['/api/explanations'].post
  t.same(explanations.requestBody, { $ref: '#/components/requestBodies/FlowsPandasSplitFrame' })
  t.same(Object.keys(explanations.responses).sort(), ['200', '400', '401', '408', '413', '415', '429', '501', '503'])
  t.equal(explanations.responses['200'].content['application/json'].schema.$ref, '#/components/schemas/Explanations')
  t.same(explanations.parameters.map((p: { name: string, in: string }) => `${p.in}:${p.name}`), ['query:top'])
  t.match(explanations.parameters[0].schema, { type: 'integer', minimum: 1, maximum: 9999 }, 'top is an integer, so generated clients type it as one')
})

t.test('each error status has its own example, with the code and message the service answers', async t => {
  const spec = YAML.parse(readFileSync(specPath, 'utf8'))
  const expected: Record<string, { code: string, error: string, message: RegExp }> = {
    400: { code: 'INVALID_INPUT', error: 'Bad Request', message: /row 3/ },
    401: { code: 'UNAUTHORIZED', error: 'Unauthorized', message: /API key/ },
    413: { code: 'TOO_MANY_ROWS', error: 'Payload Too Large', message: /rows per request: split the frame$/ },
    415: { code: 'UNSUPPORTED_MEDIA_TYPE', error: 'Unsupported Media Type', message: /text\/plain/ },
    429: { code: 'RATE_LIMITED', error: 'Too Many Requests', message: /retry in/ },
    503: { code: 'OVERLOADED', error: 'Service Unavailable', message: /overloaded/ },
  }
  for (const [path, method] of [['/api/predictions', 'post'], ['/api/explanations', 'post'], ['/api/notifications/stats', 'get']]) {
    const responses = spec.paths[path][method].responses
    for (const [status, want] of Object.entries(expected)) {
      if (responses[status] === undefined) continue
      const examples = responses[status].content['application/json'].examples
      // 413 has two causes, each its own example: too many rows, and a body over the limit.
      t.same(Object.keys(examples), status === '413' ? [want.code, 'BODY_TOO_LARGE'] : [want.code], `${path} ${status}`)
      t.match(examples[want.code].value, { statusCode: Number(status), ...want }, `${path} ${status}`)
    }
  }
  // Five are exactly what the service answers in the situation their summary names.
  const app = await build(t, { API_KEYS: 'secret' })
  const example = (status: number) => Object.values<{ value: unknown }>(spec.paths['/api/predictions'].post.responses[status].content['application/json'].examples)[0].value
  const noKey = await app.inject({ method: 'POST', url: '/api/predictions', headers: { 'content-type': 'application/json' }, payload: '{}' })
  t.same(noKey.json(), example(401))
  const headers = { authorization: 'Bearer secret' }
  const plain = await app.inject({ method: 'POST', url: '/api/predictions', headers: { ...headers, 'content-type': 'text/plain' }, payload: 'x' })
  t.same(plain.json(), example(415))
  const rows = { columns: ['flow_duration'], data: Array.from({ length: 10001 }, () => [1]) }
  const tooMany = await app.inject({ method: 'POST', url: '/api/predictions', headers: { ...headers, 'content-type': 'application/json' }, payload: rows })
  t.same(tooMany.json(), example(413))
  const tooLarge = await app.inject({ method: 'POST', url: '/api/predictions', headers: { ...headers, 'content-type': 'application/json' }, payload: ' '.repeat(6291457) })
  t.same(tooLarge.json(), spec.paths['/api/predictions'].post.responses[413].content['application/json'].examples.BODY_TOO_LARGE.value, 'a body over BODY_LIMIT, as the second 413 example says')
  const short = await app.inject({ method: 'POST', url: '/api/predictions', headers: { ...headers, 'content-type': 'application/json' }, payload: { columns: Array.from({ length: 79 }, (_, i) => `c${i}`), data: [[], [], [], Array(78).fill(1)].map((row, i) => i < 3 ? Array(79).fill(1) : row) } })
  t.same(short.json(), example(400))
  const seen = new Set(Object.keys(expected).map(status => spec.paths['/api/predictions'].post.responses[status]?.content['application/json'].examples))
  t.equal(seen.size, Object.keys(expected).length, 'no two statuses share an example')
})

t.test('every operation has an operationId; every /api operation lists 401, 429 and 503; servers has a default', async t => {
  const spec = YAML.parse(readFileSync(specPath, 'utf8'))
  const ids = new Set<string>()
  for (const [path, operations] of Object.entries<Record<string, { operationId?: string, responses: Record<string, unknown> }>>(spec.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      t.match(operation.operationId, /^[a-z][A-Za-z]+$/, `${method} ${path} has an operationId`)
      ids.add(operation.operationId ?? '')
      if (path.startsWith('/api/')) {
        for (const status of ['200', '401', '429', '503']) t.ok(operation.responses[status], `${method} ${path} documents ${status}`)
      }
    }
  }
  t.equal(ids.size, 15, 'operationIds are unique')
  t.equal(spec.paths['/api/notifications'].get.responses['400'].content['application/json'].schema.$ref, '#/components/schemas/ErrorResponse')
  const include = spec.paths['/api/notifications'].get.parameters.find((p: { name: string }) => p.name === 'include')
  t.equal(include.required, false, 'include is optional, as the server treats it')
  t.match(spec.servers[0], { url: '{scheme}://{host}', variables: { host: { default: 'localhost:5000' } } })
})

t.test('Swagger UI is served at /docs, with the same document', async t => {
  const app = await build(t)
  const page = await app.inject('/docs/')
  t.equal(page.statusCode, 200)
  t.match(page.body, /swagger/i)
  const json = await app.inject('/docs/json')
  t.equal(json.json().openapi, '3.1.0')
})

t.test('a client generated with openapi-typescript types requests and responses correctly', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ml-ids-client-'))
  writeFileSync(join(dir, 'api.ts'), astToString(await openapiTS(pathToFileURL(specPath))))
  writeFileSync(join(dir, 'use.ts'), `
import type { paths, components } from './api'
type Predict = paths['/api/predictions']['post']
type Body = NonNullable<Predict['requestBody']>['content']['application/json; format=pandas-split']
type Ok = Predict['responses'][200]['content']['application/json']
type Problem = Predict['responses'][400]['content']['application/json']

export const body: Body = { columns: ['flow_duration', 'timestamp'], index: [0, 1], data: [[1, '21/02/2018 10:15:06'], [null, null]] }
export const noIndex: Body = { columns: ['flow_duration'], data: [[1.5]] }
export const ok: Ok = [0, 1, 1]
export const problem: Problem = { statusCode: 400, error: 'Bad Request', message: 'row 1 ...', code: 'INVALID_INPUT' }
export const backend: components['schemas']['ModelInfo']['backend'] = 'sagemaker'
export const first: 0 | 1 = ok[0]

// @ts-expect-error a prediction is 0 or 1
export const notAPrediction: Ok = [2]
// @ts-expect-error a cell is a number, a string or null
export const booleanCell: Body = { columns: ['a'], data: [[true]] }
// @ts-expect-error columns are required
export const noColumns: Body = { data: [] }
// @ts-expect-error an error has a message
export const noMessage: Problem = { statusCode: 400, error: 'Bad Request' }
// @ts-expect-error only two backends
export const otherBackend: components['schemas']['ModelInfo']['backend'] = 'onnx'
type Stream = paths['/api/notifications']['get']
export const noQuery: Stream['parameters']['query'] = {}
export const unauthorized: Stream['responses'][401]['content']['application/json'] = { statusCode: 401, error: 'Unauthorized', message: 'unknown API key' }
`)
  const program = ts.createProgram([join(dir, 'use.ts')], { strict: true, noEmit: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler })
  const diagnostics = ts.getPreEmitDiagnostics(program).map(d => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
  t.same(diagnostics, [], 'the generated types accept valid values and reject each invalid one')
})
