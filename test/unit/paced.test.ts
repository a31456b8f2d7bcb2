import t from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { pacedLoad, responseIn } from '../../bench/paced.js'

t.test('responseIn: the first whole answer of the bytes read, undefined until it is whole', async t => {
  const answer = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 5\r\n\r\n[0,1]'
  t.equal(responseIn(Buffer.from(answer.slice(0, 30))), undefined, 'head incomplete')
  t.equal(responseIn(Buffer.from(answer.slice(0, -1))), undefined, 'body incomplete')
  t.same(responseIn(Buffer.from(answer)), { length: answer.length, status: 200 })
  t.same(responseIn(Buffer.from(answer + 'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n')), { length: answer.length, status: 200 }, 'the first of two')
  t.same(responseIn(Buffer.from('HTTP/1.1 503 Service Unavailable\r\nCONTENT-LENGTH: 0\r\n\r\n')), { length: 55, status: 503 })
  t.throws(() => responseIn(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')), /without Content-Length/)
})

t.test('pacedLoad spreads the requests over the run (not a burst a second) and counts answers by status', async t => {
  const arrivals: number[] = []
  const server = createServer((req, res) => {
    arrivals.push(performance.now())
    req.resume()
    req.on('end', () => {
      const body = arrivals.length % 10 === 0 ? '{"statusCode":503}' : '[0]'
      res.writeHead(arrivals.length % 10 === 0 ? 503 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const { port } = server.address() as AddressInfo
  const result = await pacedLoad(`http://127.0.0.1:${port}/api/predictions`, '{"data":[[1]]}', { connections: 20, rate: 200, seconds: 0.6, contentType: 'application/json' })
  t.equal(arrivals.length, 120, 'every request sent once')
  t.match(result, { ok: 108, non2xx: 12, errors: 0, unanswered: 0 })
  // Paced: about 10 requests in any 50 ms (more after a stall of the test's process); autocannon's
  // overallRate would send all 120 at once.
  const busiest = Math.max(...arrivals.map(a => arrivals.filter(b => b >= a && b < a + 50).length))
  t.ok(busiest <= 60, `at most half the requests in any 50 ms (busiest: ${busiest})`)
  const span = arrivals[arrivals.length - 1] - arrivals[0]
  t.ok(span >= 500, `spread over the run (${Math.round(span)} ms)`)
  t.ok(result.p99_ms >= result.p50_ms && result.p50_ms > 0, 'latencies measured')
})
