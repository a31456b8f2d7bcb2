import t from 'tap'
import { connect, type Socket } from 'node:net'
import { readFileSync, writeFileSync } from 'node:fs'
import { connectionLimit } from '../plugins/app/pressure.js'
import { examples, splitFrame, PANDAS_SPLIT } from './helper.js'
import { startServer } from './support/server-process.js'

/**
 * The overload cases, scaled to a test, against server.ts as its own process: stalled bodies,
 * running out of file descriptors, pathologically nested JSON.
 */

const MB = 1024 * 1024

/** VmRSS or VmHWM (the peak) of a process, in bytes. */
function memoryOf (pid: number, field: 'VmRSS' | 'VmHWM') {
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return Number(kb) * 1024
}

/** Waits until `check` holds, re-checking on each of `emitter`'s `event`s. */
/**
 * /health's status once the connections a test just destroyed are gone on the server's side too: their
 * closes reach it after a moment, and a connection made before then may still meet EMFILE or the
 * connection cap and be reset. Answering once they are freed is what the tests assert; 5 s at most.
 */
async function healthOnceFreed (url: string): Promise<number | undefined> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const status = await fetch(`${url}/health`).then(res => res.status, () => undefined)
    if (status !== undefined) return status
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return undefined
}

function until (check: () => boolean, subscribe: (wake: () => void) => void): Promise<void> {
  return new Promise(resolve => {
    if (check()) return resolve()
    subscribe(() => { if (check()) resolve() })
  })
}

interface Stalled { socket: Socket, answer: Promise<string>, written: Promise<void> }

/** Headers declaring `declared` bytes, then `sent` bytes of body, then nothing. */
function stalledPost (port: number, declared: number, body: Buffer): Stalled {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  let text = ''
  socket.on('data', chunk => { text += chunk })
  const answer = new Promise<string>(resolve => socket.on('close', () => resolve(text)))
  const written = new Promise<void>(resolve => {
    socket.on('connect', () => {
      socket.write(`POST /api/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: ${PANDAS_SPLIT}\r\nContent-Length: ${declared}\r\n\r\n`)
      socket.write(body, () => resolve())
    })
    socket.on('close', () => resolve())
  })
  return { socket, answer, written }
}

t.test('stalled bodies: bytes in flight stay under the cap, the rest get 503 unread, stalls end in 408, /health answers', async t => {
  const server = startServer({ PORT: '0', HOST: '127.0.0.1', MAX_BODY_BYTES_IN_FLIGHT: String(8 * MB), BODY_STALL_TIMEOUT_MS: '5000', PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0' })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const url = await server.listening
  const port = Number(new URL(url).port)
  const pid = server.child.pid!
  writeFileSync(`/proc/${pid}/clear_refs`, '5') // resets the peak (VmHWM) to the current size
  const before = memoryOf(pid, 'VmRSS')

  // 100 clients each declare 4 MB, send 3 MB and stall: 300 MB if bodies were held without a cap.
  const body = Buffer.alloc(3 * MB, 'x')
  const clients = Array.from({ length: 100 }, () => stalledPost(port, 4 * MB, body))
  await Promise.all(clients.map(c => c.written))

  const health = await fetch(`${url}/health`)
  t.equal(health.status, 200, '/health answers while bodies stall')

  const answers = await Promise.all(clients.map(c => c.answer))
  const peak = memoryOf(pid, 'VmHWM')
  const statuses = answers.map(text => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0))
  const accepted = statuses.filter(s => s === 408).length
  const refused = statuses.filter(s => s === 503).length
  t.ok(accepted >= 1 && accepted <= 2, `${accepted} bodies fit the 8 MB in flight; they stalled and were answered 408`)
  // A refused client still writing its body may see the connection reset before it reads the 503.
  const reset = statuses.filter(s => s === 0).length
  t.equal(accepted + refused + reset, 100, `the others were refused: ${refused} read the 503, ${reset} saw the reset first`)
  t.ok(refused > 0)
  const refusal = answers.find(text => text.startsWith('HTTP/1.1 503'))!
  t.match(refusal, /retry-after: \d+/i)
  t.match(refusal, /connection: close/i)
  t.match(refusal, /content-type: application\/json/i, 'in the error shape (its body may be lost to the reset of a client still sending)')
  t.match(answers.find(text => text.startsWith('HTTP/1.1 408')), /sent nothing for 5000 ms.*"code":"BODY_STALLED"/)
  t.ok(peak - before < 100 * MB, `peak RSS grew ${Math.round((peak - before) / MB)} MB (under 100 MB; 300 MB were sent)`)

  const frame = JSON.stringify(splitFrame([examples.benign, examples.attack]))
  const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: frame })
  t.same(await res.json(), [0, 1], 'once they are gone, bodies are taken again')

  // Pathological nesting, through the same real server: refused from a byte scan, before JSON.parse.
  // (64 KB: the client has sent it all when the 400 closes the connection; 6 MB bodies in bodies.test.ts.)
  const nested = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: '['.repeat(32_768) + ']'.repeat(32_768) })
  t.equal(nested.status, 400)
  t.match(await nested.json(), { code: 'JSON_TOO_DEEP', message: /deeper than 8 levels/ })
  t.equal(server.child.exitCode, null, 'still running')
})

t.test('running out of file descriptors: the sampler does not throw, the process survives and answers after', async t => {
  const server = startServer({ PORT: '0', HOST: '127.0.0.1', MAX_CONNECTIONS: '100000' }, { fdLimit: 200 })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const url = await server.listening
  const port = Number(new URL(url).port)
  const sockets = Array.from({ length: 300 }, () => connect(port, '127.0.0.1').on('error', () => {}))
  // The next memory sample opens /proc/self/stat, which fails with EMFILE while every descriptor is taken.
  await until(() => /memory sample failed/.test(server.output()), wake => server.child.stdout!.on('data', wake))
  t.match(server.output(), /"code":"EMFILE".*"msg":"memory sample failed: keeping the last value"/)
  for (const socket of sockets) socket.destroy()
  t.equal(await healthOnceFreed(url), 200)
  t.equal(server.child.exitCode, null, 'still running')
  t.notMatch(server.output(), /closing after an error/)
})

t.test('by default, connections stop below the file-descriptor limit: the extra ones are closed, the process answers', async t => {
  const server = startServer({ PORT: '0', HOST: '127.0.0.1' }, { fdLimit: 200 })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const url = await server.listening
  const port = Number(new URL(url).port)
  const limit = connectionLimit(0, 200)
  t.equal(limit, 136, 'the limit less a reserve of 64')
  let closed = 0
  const closing: Array<() => void> = []
  const sockets = Array.from({ length: 300 }, () => connect(port, '127.0.0.1').on('error', () => {}).on('close', () => {
    closed++
    for (const wake of closing) wake()
  }))
  await until(() => closed >= 300 - limit, wake => closing.push(wake))
  t.pass(`${closed} connections over the limit were closed by the server`)
  for (const socket of sockets) socket.destroy()
  t.equal(await healthOnceFreed(url), 200)
  t.equal(server.child.exitCode, null, 'still running')
})

t.test('connectionLimit: configured, or the descriptor limit less a reserve, at most 10,000', async t => {
  t.equal(connectionLimit(500, 200), 500)
  t.equal(connectionLimit(0, 1024), 1024 - 103)
  t.equal(connectionLimit(0, 1_048_576), 10_000)
  t.equal(connectionLimit(0, 50), 16)
  t.equal(connectionLimit(0, undefined), 10_000)
})
