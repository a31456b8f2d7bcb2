import t from 'tap'
import fc from 'fast-check'
import { mkdtempSync, readFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import { createApp } from '../app.js'
import { ErrorResponse } from '../schemas/common.js'
import { examples, splitFrame, PANDAS_SPLIT } from './helper.js'

// Thousands of hostile, broken and almost-right requests: every answer is a 200 for a valid frame or a
// 4xx in the documented shape, never a 5xx; the process stays up, memory stays bounded, and only
// answered requests are notified.
t.test('fuzzing POST /api/predictions', async t => {
  const logFile = join(mkdtempSync(join(tmpdir(), 'ml-ids-fuzz-')), 'notifications.jsonl')
  const app = createApp({ env: { NOTIFY_LOG_FILE: logFile, BODY_LIMIT: String(256 * 1024), MAX_ROWS: '500' } })
  await app.ready()
  const valid = splitFrame([examples.benign, examples.attack, examples.benign])
  const validText = JSON.stringify(valid)
  let answeredRows = 0
  let requests = 0
  const statuses = new Map<number, number>()

  async function check (payload: string | Buffer, contentType: string | undefined) {
    requests++
    const res = await app.inject({ method: 'POST', url: '/api/predictions', headers: contentType === undefined ? {} : { 'content-type': contentType }, payload })
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
    if (res.statusCode >= 500) throw new Error(`${res.statusCode} for ${String(payload).slice(0, 200)}: ${res.body}`)
    if (res.statusCode === 200) {
      const answer = res.json()
      if (!Array.isArray(answer) || answer.some(p => p !== 0 && p !== 1)) throw new Error(`200 with ${res.body.slice(0, 100)}`)
      answeredRows += answer.length
      return
    }
    if (res.statusCode < 400 || !Value.Check(ErrorResponse, res.json())) throw new Error(`${res.statusCode} not in the error shape: ${res.body.slice(0, 200)}`)
  }

  const contentTypes = fc.constantFrom(PANDAS_SPLIT, 'application/json', 'text/csv', 'APPLICATION/JSON; FORMAT=PANDAS-SPLIT', 'text/plain', 'application/json; format=records', 'multipart/form-data; boundary=x', '', ';;;', 'application/json; charset=utf-16', undefined)
  const heapBefore = process.memoryUsage().heapUsed

  // Any JSON value at all, under any content type.
  await fc.assert(fc.asyncProperty(fc.json({ depthSize: 'medium' }), contentTypes, check), { numRuns: 1500 })

  // Valid frames, mutated: a cell, a key, the shape, numbers at the edges, unicode.
  const cell = fc.oneof(fc.jsonValue(), fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER, -0, 'Infinity', '-inf', 'NaN', '', '\u0000', '🛡️', 'ß'.repeat(2000)), fc.double())
  const mutated = fc.oneof(
    fc.tuple(fc.nat(2), fc.nat(80), cell).map(([r, c, v]) => { const f = structuredClone(valid); f.data[r][c % f.columns.length] = v as never; return JSON.stringify(f) }),
    fc.tuple(fc.constantFrom('columns', 'data', 'index'), fc.jsonValue()).map(([key, v]) => JSON.stringify({ ...valid, [key]: v })),
    fc.constantFrom('columns', 'data', 'index').map(key => { const f: Record<string, unknown> = structuredClone(valid); delete f[key]; return JSON.stringify(f) }),
    fc.nat(validText.length).map(n => validText.slice(0, n)),
    fc.tuple(fc.nat(validText.length), fc.string({ unit: 'binary', maxLength: 8 })).map(([n, s]) => validText.slice(0, n) + s + validText.slice(n)),
    fc.tuple(fc.nat(2), fc.nat(80)).map(([r, c]) => { const f = structuredClone(valid); (f.data[r] as unknown[]).splice(c % f.columns.length, 1); return JSON.stringify(f) }),
    fc.nat(50_000).map(n => `{"columns":["a"],"data":[[${'['.repeat(n)}${']'.repeat(n)}]]}`),
    fc.nat(200_000).map(n => '['.repeat(n)),
    fc.constantFrom('{"columns":["a"],"data":[[1e400]]}', '{"__proto__":{"x":1},"columns":[],"data":[]}', '{"constructor":{"prototype":{}},"columns":[],"data":[]}', '\ufeff' + validText)
  )
  await fc.assert(fc.asyncProperty(mutated, contentTypes, check), { numRuns: 1500 })

  // Raw bytes, and bodies over the limit.
  await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }).map(b => Buffer.from(b)), contentTypes, check), { numRuns: 300 })
  await check('x'.repeat(300 * 1024), PANDAS_SPLIT)

  t.ok(requests >= 3000, `${requests} requests`)
  t.ok([...statuses.keys()].every(s => s === 200 || (s >= 400 && s < 500)), `statuses ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.ok((statuses.get(200) ?? 0) > 0 && (statuses.get(400) ?? 0) > 0 && (statuses.get(415) ?? 0) > 0, 'the fuzzing reached both answers and rejections')
  t.equal((await app.inject('/health')).statusCode, 200, 'still up')
  t.ok(process.memoryUsage().heapUsed - heapBefore < 200 * 1024 * 1024, 'memory stayed bounded')
  await app.close()
  // Each line is a message carrying one or more rows (NOTIFY_GROUPING): count the rows.
  const lines = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').filter(Boolean) : []
  const notified = lines.reduce((sum, line) => sum + JSON.parse(line).message.index.length, 0)
  t.equal(notified, answeredRows, 'a notification for every answered row, none for rejected requests')
})
