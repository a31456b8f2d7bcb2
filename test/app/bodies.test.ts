import t from 'tap'
import { Writable } from 'node:stream'
import { request } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { Value } from '@sinclair/typebox/value'
import fc from 'fast-check'
import { createApp } from '../../app.js'
import { depthScanner, MAX_JSON_DEPTH } from '../../input/body.js'
import { redactUrl } from '../../plugins/app/request-log.js'
import { ErrorResponse } from '../../schemas/common.js'
import { build, examples, post, splitFrame, PANDAS_SPLIT } from '../helper.js'

const frame = splitFrame([examples.benign, examples.attack])

t.test('the depth scan counts brackets outside strings only, across chunks', async t => {
  const scan = (depth: number, ...chunks: string[]) => {
    const within = depthScanner(depth)
    return chunks.every(chunk => within(Buffer.from(chunk)))
  }
  t.ok(scan(3, '{"columns":["a"],"data":[[1,2],[3,4]]}'), 'a split frame is 3 deep')
  t.notOk(scan(3, '{"data":[[[1]]]}'), '4 deep is over 3')
  t.ok(scan(3, '{"columns":["[[[[[[", "{{{{"],"data":[]}'), 'brackets inside strings do not count')
  t.ok(scan(3, '{"columns":["a\\"[[[[[[\\\\", "b"],"data":[]}'), 'escaped quotes and backslashes are followed')
  t.notOk(scan(3, '{"data":[', '[', '[1]]]}'), 'depth carries across chunks')
  t.ok(scan(2, '{"a":"x\\', '"[[[["}'), 'an escape split across chunks')
  t.ok(scan(3, '{"café ☕":["€[",1]}'), 'multi-byte characters')
})

t.test('the depth scan agrees with JSON.parse on any JSON, split anywhere', async t => {
  const depthOf = (value: unknown): number => value !== null && typeof value === 'object'
    ? 1 + Math.max(0, ...Object.values(value).map(depthOf))
    : 0
  fc.assert(fc.property(fc.json({ depthSize: 'medium' }), fc.array(fc.nat(), { maxLength: 5 }), (text, cuts) => {
    const bytes = Buffer.from(text)
    const points = [...new Set(cuts.map(c => c % (bytes.length + 1)))].sort((a, b) => a - b)
    const chunks = [0, ...points].map((start, i) => bytes.subarray(start, [...points, bytes.length][i]))
    const depth = depthOf(JSON.parse(text))
    const fits = (max: number) => { const within = depthScanner(max); return chunks.every(chunk => within(chunk)) }
    return fits(depth) && (depth === 0 || !fits(depth - 1))
  }), { numRuns: 500 })
  t.pass('500 generated documents')
})

t.test('a body nested deeper than a split frame can be is refused with 400, naming the limit', async t => {
  const app = await build(t)
  for (const body of ['['.repeat(100_000), '{"data":' + '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH) + '}', '['.repeat(3_000_000)]) {
    const res = await post(app, body)
    t.equal(res.statusCode, 400)
    t.ok(Value.Check(ErrorResponse, res.json()))
    t.match(res.json(), { code: 'JSON_TOO_DEEP', message: `the body nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects: a split frame nests 3` })
  }
  t.same((await post(app, frame)).json(), [0, 1], 'a frame is not')
  t.equal(app.bodyBytesInFlight(), 0, 'every reservation was released')
})

t.test('bodies in flight: past the cap, 503 with Retry-After before the body is read', async t => {
  const app = await build(t, { MAX_BODY_BYTES_IN_FLIGHT: '2048', PRESSURE_RETRY_AFTER_S: '3' })
  const big = JSON.stringify(splitFrame(Array(10).fill(examples.benign)))
  t.ok(Buffer.byteLength(big) > 2048)
  const res = await post(app, big)
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '3')
  t.equal(res.headers.connection, 'close')
  t.ok(Value.Check(ErrorResponse, res.json()))
  t.match(res.json(), { code: 'OVERLOADED', message: 'too many request bodies in flight (2048 bytes): retry in 3 s' })
  t.equal(app.bodyBytesInFlight(), 0)
  t.same((await post(app, splitFrame([examples.attack]))).json(), [1], 'a body that fits is taken')
})

t.test('chunked bodies (no length) are reserved as they arrive, and stalls end in 408, through a real server', async t => {
  const app = createApp({ env: { MAX_BODY_BYTES_IN_FLIGHT: '4096', BODY_STALL_TIMEOUT_MS: '300' } })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const send = (write: (req: ReturnType<typeof request>) => void) => new Promise<{ status: number, body: string, headers: Record<string, unknown> }>((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/api/predictions', headers: { 'content-type': PANDAS_SPLIT, 'transfer-encoding': 'chunked' } }, res => {
      let body = ''
      res.on('data', chunk => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('error', reject)
    write(req)
  })
  const small = await send(req => req.end(JSON.stringify(splitFrame([examples.attack]))))
  t.equal(small.status, 200, 'a small chunked body is taken')
  const over = await send(req => {
    req.write('{"columns":["a"],"data":[')
    req.end('[1],'.repeat(2000) + '[1]]}')
  })
  t.equal(over.status, 503, 'a chunked body growing past the cap is refused')
  t.match(JSON.parse(over.body), { code: 'OVERLOADED' })
  const stalled = await send(req => req.write('{"columns":'))
  t.equal(stalled.status, 408)
  t.match(JSON.parse(stalled.body), { code: 'BODY_STALLED', message: 'the body sent nothing for 300 ms: send it without pauses' })
  t.equal(stalled.headers.connection, 'close')
  t.equal(app.bodyBytesInFlight(), 0, 'all released')
})

t.test('a body with a known length: whole on arrival, checked on its bytes; still coming, timed for stalls; through a real server', async t => {
  const app = createApp({ env: { BODY_STALL_TIMEOUT_MS: '300' } })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const exchange = (write: (socket: ReturnType<typeof connect>) => void) => new Promise<string>(resolve => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    socket.on('data', chunk => { text += chunk })
    socket.on('close', () => resolve(text))
    write(socket)
  })
  const head = (length: number) => `POST /api/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: ${PANDAS_SPLIT}\r\nContent-Length: ${length}\r\n`
  const small = JSON.stringify(splitFrame([examples.attack]))
  const deep = '{"data":' + '['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH) + '}'
  // Headers and bodies in one write: each body is here whole when its request is read.
  const whole = await exchange(socket => socket.write(
    `${head(Buffer.byteLength(small))}\r\n${small}` + `${head(deep.length)}\r\n${deep}` + `${head(Buffer.byteLength(small))}Connection: close\r\n\r\n${small}`))
  t.same([...whole.matchAll(/HTTP\/1\.1 (\d{3})/g)].map(m => Number(m[1])), [200, 400, 200], 'a frame answered, a deep body refused, and the connection carries on (the refused body was read whole)')
  t.match(whole, /\r\n\r\n\[1\]/, 'the frame read back whole')
  t.match(whole, /JSON_TOO_DEEP/)
  // A declared length the client does not finish sending: the streamed path, with its stall timer.
  const stalled = await exchange(socket => socket.write(`${head(Buffer.byteLength(small))}\r\n${small.slice(0, 10)}`))
  t.match(stalled, /^HTTP\/1\.1 408/)
  t.match(stalled, /BODY_STALLED/)
  // Its first bytes with the headers, the rest later: the streamed path, answered normally.
  const late = await exchange(socket => {
    socket.write(`${head(Buffer.byteLength(small))}Connection: close\r\n\r\n${small.slice(0, 10)}`)
    setTimeout(() => socket.write(small.slice(10)), 50)
  })
  t.match(late, /^HTTP\/1\.1 200[\s\S]*\r\n\r\n\[1\]$/)
  t.equal(app.bodyBytesInFlight(), 0, 'all released')
})

t.test('a keep-alive connection carries on after a body left unread; a refused one closes it', async t => {
  const app = createApp({ env: {} })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const nested = '['.repeat(200_000)
  const junk = JSON.stringify({ a: 'x'.repeat(100_000) })
  const socket = connect(port, '127.0.0.1')
  let text = ''
  socket.on('data', chunk => { text += chunk })
  const post = (path: string, body: string) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  socket.write(post('/nowhere', junk) + post('/health', junk) + post('/api/predictions', nested) + 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
  await new Promise(resolve => socket.on('close', resolve))
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map(m => Number(m[1]))
  t.same(statuses, [404, 404, 400], 'unread bodies are dropped and the next request answered; after a refused body Fastify closes')
  t.match(text, /JSON_TOO_DEEP/)
  t.equal(app.bodyBytesInFlight(), 0)
})

t.test('credentials in the query string are redacted from the request log', async t => {
  t.equal(redactUrl('/api/model?api_key=s3cret&include=all&key=x&token=y&x-api-key=z'), '/api/model?api_key=[REDACTED]&include=all&key=[REDACTED]&token=[REDACTED]&x-api-key=[REDACTED]')
  t.equal(redactUrl('/api/model?API%5FKEY=s3cret'), '/api/model?API%5FKEY=[REDACTED]', 'encoded names too')
  t.equal(redactUrl('/api/model'), '/api/model')
  let logs = ''
  const stream = new Writable({ write (chunk, _enc, done) { logs += chunk; done() } })
  const app = createApp({ env: { API_KEYS: 'sekrit-key-123' }, logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  await app.ready()
  t.equal((await app.inject('/api/model?api_key=sekrit-key-123')).statusCode, 401, 'a key in the query string is not a key')
  await app.inject('/%61pi/model?key=sekrit-key-123&include=all')
  await app.inject('/nowhere?apikey=sekrit-key-123')
  t.equal(logs.split('\n').filter(line => line.includes('"msg":"request"')).length, 3, 'the requests were logged')
  t.match(logs, /"url":"\/api\/model\?api_key=\[REDACTED\]"/)
  t.notMatch(logs, /sekrit-key-123/)
  const lines = logs.split('\n').filter(line => line.includes('"msg":"request"')).map(line => JSON.parse(line))
  t.same(lines.map(line => line.route), ['/api/model', '/api/model', undefined], 'the route that matched, whatever the spelling; none for a 404')
})
