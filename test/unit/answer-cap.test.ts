import t, { type Test } from 'tap'
import { createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { HttpRequest } from '@smithy/core/transport'
import type { Readable } from 'node:stream'
import { CappedHttpHandler } from '../../aws-clients.js'

// The AWS clients' answer cap (aws-clients.ts), on raw sockets: what an endpoint writes is exactly what
// the test says, not what an HTTP server library would make of it.
async function answering (t: Test, raw: string) {
  // A reset when the client stops reading is the point of some tests, not a failure of the endpoint.
  const server = createServer((socket: Socket) => { socket.on('error', () => {}).once('data', () => { socket.end(raw) }) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const handler = new CappedHttpHandler({}, 1000, 'the test endpoint')
  t.teardown(() => handler.destroy())
  const request = new HttpRequest({ hostname: '127.0.0.1', port: (server.address() as AddressInfo).port, method: 'GET', path: '/', protocol: 'http:', headers: {} })
  return async () => {
    const { response } = await handler.handle(request)
    let bytes = 0
    for await (const chunk of response.body as Readable) bytes += (chunk as Buffer).length
    return bytes
  }
}

t.test('a declared length within the cap is read as declared, however much more the endpoint writes', async t => {
  const read = await answering(t, `HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello${'x'.repeat(100_000)}`)
  t.equal(await read(), 5, 'the body ends at its declared length')
})

t.test('a declared length over the cap fails at once', async t => {
  const read = await answering(t, `HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n${'x'.repeat(5000)}`)
  await t.rejects(read(), { message: 'the test endpoint answered more than 1000 bytes' })
})

t.test('a chunked answer is counted and fails as it passes the cap', async t => {
  const chunk = 'x'.repeat(600)
  const small = await answering(t, `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n0\r\n\r\n`)
  t.equal(await small(), 600, 'within the cap: read whole')
  const large = await answering(t, `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`)
  await t.rejects(large(), { message: 'the test endpoint answered more than 1000 bytes' })
})
