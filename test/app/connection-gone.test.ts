import t from 'tap'
import { Agent, request } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import { createApp } from '../../app.js'

// request.hold's signal is its connection's (plugins/app/bodies.ts): aborted when the client goes,
// never by an earlier request's answer on the same keep-alive connection.
t.test('a held request\'s signal: kept across keep-alive requests, aborted when the connection closes', async t => {
  const app = createApp({ env: {} })
  t.teardown(() => app.close())
  let stopped: unknown
  let started: () => void = () => {}
  app.post('/held', async request => await request.hold(async signal => {
    if ((request.body as { wait?: boolean }).wait === true) {
      started()
      await new Promise(resolve => signal.addEventListener('abort', resolve, { once: true }))
      stopped = signal.reason
      return { aborted: true }
    }
    await new Promise(resolve => setTimeout(resolve, 5))
    return { aborted: signal.aborted }
  }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const sockets = new Set<unknown>()
  const post = (body: unknown) => new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path: '/held', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, res => {
      let text = ''
      res.on('data', chunk => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('socket', socket => sockets.add(socket))
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
  for (let i = 0; i < 5; i++) t.same(await post({}), { status: 200, body: '{"aborted":false}' }, `request ${i} on the connection`)
  t.equal(sockets.size, 1, 'one connection carried them all')

  // A client that goes while its work waits: the work is told, with the catalogue's reason.
  const running = new Promise<void>(resolve => { started = resolve })
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const body = JSON.stringify({ wait: true })
  socket.write(`POST /held HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
  await running
  socket.destroy()
  for (let i = 0; i < 100; i++) {
    if (stopped !== undefined) break
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  t.match(stopped, { code: 'CLIENT_GONE' })
  await new Promise(resolve => setImmediate(resolve))
  t.equal(app.bodyBytesInFlight(), 0, 'its bytes released once the work ended')
})
