import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createClient as heyApi } from '@hey-api/openapi-ts'
import openapiTS, { astToString } from 'openapi-typescript'
import { generate as orval } from 'orval'
import ts from 'typescript'
import { createApp } from '../app.js'
import { projectRoot } from '../project.js'
import { specPath } from '../scripts/write-spec.js'

/*
 * Clients generated from api-spec.yaml by three generators, used as their READMEs say, with no edit
 * of the generated code: each is compiled with tsc (strict) and calls a listening server. What each
 * shows: a JSON body sent by default with a content type the server reads, `top` typed and sent as
 * an integer, an error answered in the ErrorResponse shape, and CSV through openapi-fetch.
 */

const flowsJson = readFileSync(join(projectRoot(), 'examples', 'flows.json'), 'utf8')
const flowsCsv = readFileSync(join(projectRoot(), 'examples', 'flows.csv'), 'utf8')

// The project's node_modules linked in, so that the generated code and the compiled JS resolve its packages.
const dir = mkdtempSync(join(tmpdir(), 'ml-ids-clients-'))
symlinkSync(join(projectRoot(), 'node_modules'), join(dir, 'node_modules'), 'dir')
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

// The generators and tsc hold this process's event loop for seconds: no load shedding on its delay.
const app = createApp({ env: { PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0' } })
t.teardown(() => app.close())
const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })

// openapi-typescript types + openapi-fetch.
writeFileSync(join(dir, 'openapi-types.ts'), astToString(await openapiTS(pathToFileURL(specPath))))
writeFileSync(join(dir, 'openapi-fetch-use.ts'), `
import createClient from 'openapi-fetch'
import type { paths } from './openapi-types'

export async function run (baseUrl: string, frame: paths['/api/predictions']['post']['requestBody']['content']['application/json'], csv: string) {
  const client = createClient<paths>({ baseUrl })
  const json = await client.POST('/api/predictions', { body: frame })
  // CSV: the body is typed as any of the offered media types; the client sends it as text when told.
  const csvAnswer = await client.POST('/api/predictions', { body: csv, bodySerializer: (body: unknown) => body as string, headers: { 'Content-Type': 'text/csv' } })
  const explained = await client.POST('/api/explanations', { body: frame, params: { query: { top: 2 } } })
  const tooMany = await client.POST('/api/explanations', { body: frame, params: { query: { top: 10000 } } })
  return {
    predictions: json.data,
    csv: csvAnswer.data,
    contributions: explained.data?.map(row => Object.keys(row.contributions).length),
    error: { status: tooMany.response.status, body: tooMany.error },
  }
}
`)

// @hey-api/openapi-ts with its fetch client.
await heyApi({ input: specPath, output: join(dir, 'hey-api'), plugins: ['@hey-api/client-fetch'], logs: { level: 'silent' } })
writeFileSync(join(dir, 'hey-api-use.ts'), `
import { client } from './hey-api/client.gen'
import { explain, predict, type PandasSplitFrame } from './hey-api'

export async function run (baseUrl: string, frame: PandasSplitFrame, csv: string) {
  client.setConfig({ baseUrl })
  const json = await predict({ body: frame })
  // CSV: hey-api types the body by the first JSON media type only; its generated client sends any body.
  const csvAnswer = await client.post({ url: '/api/predictions', body: csv, bodySerializer: null, headers: { 'Content-Type': 'text/csv' } })
  const explained = await explain({ body: frame, query: { top: 2 } })
  const refused = await explain({ body: frame, query: { top: 0 } })
  return {
    predictions: json.data,
    contentType: json.request.headers.get('content-type'),
    csv: csvAnswer.data,
    contributions: explained.data?.map(row => Object.keys(row.contributions).length),
    error: { status: refused.response.status, body: refused.error },
  }
}
`)

// orval with its fetch client; the base URL is orval's configuration, not an edit.
await orval({ input: { target: specPath }, output: { target: join(dir, 'orval', 'api.ts'), client: 'fetch', baseUrl } })
writeFileSync(join(dir, 'orval-use.ts'), `
import { explain, predict, type PandasSplitFrame } from './orval/api'

export async function run (frame: PandasSplitFrame) {
  const json = await predict(frame)
  const explained = await explain(frame, { top: 2 })
  return {
    status: json.status,
    predictions: json.data,
    contributions: explained.status === 200 ? explained.data.map(row => Object.keys(row.contributions).length) : explained.data,
  }
}
`)

// Compiled as CommonJS: the generated files import each other without extensions.
writeFileSync(join(dir, 'package.json'), '{"type": "commonjs"}')
const program = ts.createProgram(['openapi-fetch-use.ts', 'hey-api-use.ts', 'orval-use.ts'].map(f => join(dir, f)), {
  strict: true,
  skipLibCheck: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.CommonJS,
  moduleResolution: ts.ModuleResolutionKind.Node10,
  lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
  types: ['node'],
  outDir: join(dir, 'js'),
})
const emitted = program.emit()
const diagnostics = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics]
  .map(d => `${d.file?.fileName.slice(dir.length) ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)
const load = createRequire(join(dir, 'js', 'index.js'))

t.test('the three generated clients compile with no edit', async t => {
  t.same(diagnostics, [])
})

t.test('openapi-fetch: JSON by default, CSV when asked, `top` an integer, errors in the ErrorResponse shape', async t => {
  const result = await load('./openapi-fetch-use.js').run(baseUrl, JSON.parse(flowsJson), flowsCsv)
  t.same(result.predictions, [0, 1])
  t.same(result.csv, [0, 1], 'the CSV example gives the same answers')
  t.same(result.contributions, [2, 2])
  t.match(result.error, { status: 400, body: { statusCode: 400, code: 'VALIDATION_ERROR', message: /top/ } })
})

t.test('hey-api: JSON by default with application/json, `top` an integer, CSV through its client', async t => {
  const result = await load('./hey-api-use.js').run(baseUrl, JSON.parse(flowsJson), flowsCsv)
  t.same(result.predictions, [0, 1])
  t.same(result.csv, [0, 1], 'the CSV example gives the same answers')
  t.equal(result.contentType, 'application/json')
  t.same(result.contributions, [2, 2])
  t.match(result.error, { status: 400, body: { code: 'VALIDATION_ERROR', message: /top/ } })
})

t.test('orval: the default body is sent as application/json (not 415), `top` an integer', async t => {
  const result = await load('./orval-use.js').run(JSON.parse(flowsJson))
  t.same(result, { status: 200, predictions: [0, 1], contributions: [2, 2] })
})
