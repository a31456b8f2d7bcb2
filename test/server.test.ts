import t from 'tap'
import { request } from 'node:http'
import { once } from 'node:events'
import { execFileSync, spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { examples, splitFrame, PANDAS_SPLIT } from './helper.js'
import { closedPort, projectModule, startServer } from './support/server-process.js'
import { onDisk } from './support/journal.js'
import { snsServer } from './support/sns.js'
import { snsEnv, until } from './support/notifications.js'

t.test('SIGTERM: the request in flight completes, then the process exits 0', async t => {
  const server = startServer({ PORT: '0', HOST: '127.0.0.1' })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const url = await server.listening
  // Headers and half the body now, the rest after the signal: the request is in flight when it arrives.
  const body = JSON.stringify(splitFrame(Array(2000).fill(examples.attack)))
  const answer = new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = request(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT, 'content-length': Buffer.byteLength(body) } }, res => {
      let text = ''
      res.on('data', chunk => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.write(body.slice(0, body.length / 2))
    setTimeout(() => {
      server.child.kill('SIGTERM')
      setTimeout(() => req.end(body.slice(body.length / 2)), 100)
    }, 100)
  })
  const res = await answer
  t.equal(res.status, 200)
  t.equal((JSON.parse(res.body) as number[]).length, 2000)
  const [code] = await once(server.child, 'exit')
  t.equal(code, 0)
  t.match(server.output(), /"signal":"SIGTERM".*"msg":"closing"/)
  await t.rejects(fetch(`${url}/health`), 'new connections are refused once closed')
})

t.test('a bad configuration stops start-up with one line naming the variable, exit 1', async t => {
  const server = startServer({ PORT: 'eighty' })
  const [code] = await once(server.child, 'exit')
  t.equal(code, 1)
  t.match(server.output(), /could not start: env\/PORT must be integer/)
  t.notMatch(server.output(), /\n\s+at /, 'no stack trace')
})

t.test('a TRUST_PROXY Fastify could not take stops start-up with one line naming it, exit 1', async t => {
  const server = startServer({ TRUST_PROXY: '10.0.0.0/40' })
  const [code] = await once(server.child, 'exit')
  t.equal(code, 1)
  t.match(server.output(), /"level":60,.*"msg":"could not start: TRUST_PROXY: .*10\.0\.0\.0\/40.* is not a hop count, an address, a CIDR range/)
  t.notMatch(server.output(), /\n\s+at /, 'no stack trace')
})

t.test('V8 and process-wide flags on the command line (which a worker thread refuses) leave the classifier and SNS threads working', async t => {
  const sns = await snsServer(t)
  const server = startServer({ PORT: '0', HOST: '127.0.0.1', WORKERS: '1', WORKER_MIN_BYTES: '0', ...snsEnv(sns.url) },
    { nodeFlags: ['--max-old-space-size=512', '--stack-size=900', '--title=ml-ids-flags'] })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const url = await server.listening
  const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: JSON.stringify(splitFrame([examples.benign, examples.attack])) })
  t.equal(res.status, 200, 'classified in the worker thread')
  t.same(await res.json(), [0, 1])
  await until(t, 'both rows announced through the sender thread', () => sns.accepted.length === 2)
  t.equal(sns.accepted.length, 2)
  t.equal(server.child.exitCode, null, 'still running')
  t.notMatch(server.output(), /ERR_WORKER_INVALID_EXEC_ARGV|invalid execArgv/)
})

t.test('configuration as compose files and `docker run -e X=` give it: an empty value is unset; relative paths are the project\'s, wherever it starts', async t => {
  const server = startServer({ PORT: '0', HOST: '127.0.0.1', AWS_SNS_PREDICTIONS_TOPIC: '', WORKERS: '', ATTACK_THRESHOLD: '', API_KEYS: '', LOG_LEVEL: '', MODEL_DIR: 'models/cic-ids2018-xgb' }, { cwd: tmpdir() })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const url = await server.listening
  const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: JSON.stringify(splitFrame([examples.benign, examples.attack])) })
  t.equal(res.status, 200, 'no API key required: API_KEYS= is unset')
  t.same(await res.json(), [0, 1])
  t.match(await (await fetch(`${url}/api/notifications/stats`)).json(), { sns: null }, 'no topic')
})

t.test('a port the service cannot listen on stops it with one line naming the address', async t => {
  const taken = startServer({ PORT: '0', HOST: '127.0.0.1' })
  t.teardown(() => { taken.child.kill('SIGKILL') })
  const port = new URL(await taken.listening).port
  const server = startServer({ PORT: port, HOST: '127.0.0.1' })
  const [code] = await once(server.child, 'exit')
  t.equal(code, 1)
  t.match(server.output(), new RegExp(`"msg":"could not start: listen EADDRINUSE: address already in use 127\\.0\\.0\\.1:${port}`))
  t.notMatch(server.output(), /\n\s+at /, 'no stack trace')
})

t.test('a SHUTDOWN_TIMEOUT_MS shorter than the drain: without the journal, what SNS did not take is on disk before the process ends', async t => {
  const port = await closedPort()
  const env = snsEnv(`http://127.0.0.1:${port}`, { NOTIFY_JOURNAL: 'off', NOTIFY_GROUPING: 'row', NOTIFY_RETRY_BASE_MS: '1000', NOTIFY_RETRY_MAX_MS: '30000' })
  const server = startServer({ PORT: '0', HOST: '127.0.0.1', SHUTDOWN_TIMEOUT_MS: '2000', ...env })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const url = await server.listening
  const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: JSON.stringify(splitFrame([examples.benign, examples.attack])) })
  t.equal(res.status, 200)
  server.child.kill('SIGTERM')
  const [code] = await once(server.child, 'exit')
  t.equal(code, 0, 'closed, not killed by the timeout')
  t.notMatch(server.output(), /killed by timeout/)
  t.equal(onDisk(env.NOTIFY_DATA_DIR!).length, 2, 'both rows\' notifications on disk for the next start')
})

t.test('start-up failures are one line, even at LOG_LEVEL=silent, and METRICS_PORT mistakes are named', async t => {
  const port = await closedPort()
  const taken = startServer({ PORT: '0', HOST: '127.0.0.1' })
  t.teardown(() => { taken.child.kill('SIGKILL') })
  const busy = new URL(await taken.listening).port
  const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ LOG_LEVEL: 'silent', NOTIFY: 'bogus' }, /"msg":"could not start: env\/NOTIFY must be one of all, attacks, unfamiliar, none \(given \\"bogus\\"\)"/],
    [{ PORT: port, METRICS_PORT: port }, new RegExp(`"msg":"could not start: METRICS_PORT ${port} is PORT too: give /metrics a port of its own`)],
    [{ PORT: '0', METRICS_PORT: busy }, new RegExp(`"msg":"could not start: METRICS_PORT ${busy}: listen EADDRINUSE`)],
  ]
  for (const [env, line] of cases) {
    const server = startServer({ HOST: '127.0.0.1', ...env })
    const [code] = await once(server.child, 'exit')
    t.equal(code, 1, JSON.stringify(env))
    t.match(server.output(), line)
    t.notMatch(server.output(), /\n\s+at /, 'no stack trace')
  }
})

t.test('SIGTERM with stdout a pipe nobody reads (a log shipper stuck), or whose reader is gone: the process still exits', async t => {
  for (const reader of ['stuck', 'gone'] as const) {
    const port = await closedPort()
    const child = spawn(process.execPath, [...process.execArgv, projectModule('server')], {
      env: { PATH: process.env.PATH, PORT: port, HOST: '127.0.0.1', LOG_LEVEL: 'info', NOTIFY: 'none', SHUTDOWN_TIMEOUT_MS: '2000' },
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    t.teardown(() => { child.kill('SIGKILL') })
    // Up to its 'listening' line, then nothing more is read: the pipe fills.
    let head = ''
    while (!head.includes('Server listening')) head += String((await once(child.stdout!, 'data'))[0])
    child.stdout!.pause()
    const body = JSON.stringify(splitFrame([examples.benign]))
    // ~600 request log lines: well over a pipe's 64 KiB.
    for (let k = 0; k < 30; k++) {
      await Promise.all(Array.from({ length: 20 }, async () => await (await fetch(`http://127.0.0.1:${port}/api/predictions?padding=${'x'.repeat(200)}`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body })).text()))
    }
    if (reader === 'gone') child.stdout!.destroy()
    const started = Date.now()
    child.kill('SIGTERM')
    const exited = await Promise.race([once(child, 'exit').then(() => true), new Promise(resolve => setTimeout(resolve, 10_000, false))])
    t.ok(exited, `${reader} reader: exited ${exited ? `after ${Date.now() - started} ms` : 'not within 10 s'}`)
  }
})

t.test('SIGTERM with stdout a FIFO written without O_NONBLOCK (as containerd gives a container) whose reader stopped: the process still exits', async t => {
  const fifo = join(mkdtempSync(join(tmpdir(), 'ml-ids-stdout-')), 'stdout')
  execFileSync('mkfifo', [fifo])
  // Read and write, blocking: the reader exists (writes do not fail) but never reads; the child inherits it as its stdout.
  const stdout = openSync(fifo, 'r+')
  t.teardown(() => closeSync(stdout))
  const port = await closedPort()
  // Without tap's loaders, which its spawn hook also adds through NODE_OPTIONS: they open process.stdout,
  // which makes the FIFO non-blocking for every process sharing it, as the service itself never does.
  const child = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, ...process.execArgv.filter(arg => !arg.includes('@tapjs')), projectModule('server')], {
    env: { PATH: process.env.PATH, PORT: port, HOST: '127.0.0.1', LOG_LEVEL: 'info', NOTIFY: 'none', SHUTDOWN_TIMEOUT_MS: '2000' },
    stdio: ['ignore', stdout, 'ignore'],
  })
  t.teardown(() => { child.kill('SIGKILL') })
  // Its stdout is not read, so it is ready when it answers.
  const deadline = Date.now() + 20_000
  while ((await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok !== true && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
  const body = JSON.stringify(splitFrame([examples.benign]))
  // ~600 request log lines: well over the FIFO's 64 KiB.
  for (let k = 0; k < 30; k++) {
    await Promise.all(Array.from({ length: 20 }, async () => await (await fetch(`http://127.0.0.1:${port}/api/predictions?padding=${'x'.repeat(200)}`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body })).text()))
  }
  const started = Date.now()
  child.kill('SIGTERM')
  const exited = await Promise.race([once(child, 'exit').then(([code]) => code as number), new Promise(resolve => setTimeout(resolve, 10_000, 'not within 10 s'))])
  t.equal(exited, 0, `exit ${exited} after ${Date.now() - started} ms`)
})
