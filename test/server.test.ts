import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { projectRoot } from '../project.js'
import { examples, splitFrame, PANDAS_SPLIT } from './helper.js'

/** server.ts as its own process, through the same TypeScript loader as this test. */
function startServer (env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [...process.execArgv, join(projectRoot(), 'server.ts')], {
    env: { PATH: process.env.PATH, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', chunk => { output += chunk })
  child.stderr.on('data', chunk => { output += chunk })
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', () => {
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match) resolve(match[1])
    })
    child.on('exit', code => reject(new Error(`exited with ${code}: ${output}`)))
  })
  listening.catch(() => {}) // awaited only by the tests that expect it to listen
  return { child, listening, output: () => output }
}

t.test('SIGTERM: the request in flight completes, then the process exits 0', async t => {
  const server = startServer({ PORT: '0', HOST: '127.0.0.1' })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const url = await server.listening
  // A large request, so that it is still being served when the signal arrives.
  const body = JSON.stringify(splitFrame(Array(8000).fill(examples.attack)))
  const pending = fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body })
  // Signal once the server has taken the request in (it logs each request as it arrives).
  while (!server.output().includes('"url":"/api/predictions"')) await new Promise(resolve => setTimeout(resolve, 2))
  server.child.kill('SIGTERM')
  const res = await pending
  t.equal(res.status, 200)
  t.equal(((await res.json()) as number[]).length, 8000)
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
