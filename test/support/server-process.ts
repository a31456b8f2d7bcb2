import { spawn } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'

/**
 * A module of the project by its path without extension (`bench/run`), as this test runs: under
 * `npm test` the JavaScript tsc compiled into dist/, the TypeScript source under a TypeScript loader.
 */
export function projectModule (path: string): string {
  return fileURLToPath(new URL(`../../${path}${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url))
}

/**
 * The service's `server` (or another entry point, `entrypoint`, with arguments) as its own process: the
 * module compiled beside this one, so under `npm test` the child runs dist/ JavaScript (started in a
 * fraction of the time a TypeScript loader needs) with this process's flags, which carry tap's coverage
 * and source maps back to the .ts files. With `fdLimit`, under a shell's `ulimit -n` (the process then is
 * the shell's exec, so its pid is the server's). `nodeFlags` are Node's or V8's flags of a command line
 * (`--max-old-space-size=…`); `cwd`, the folder it starts in.
 */
export function startServer (env: NodeJS.ProcessEnv, opts: { script?: 'server' | 'entrypoint', args?: string[], fdLimit?: number, coverage?: boolean, nodeFlags?: string[], cwd?: string } = {}) {
  // `coverage: false` leaves out tap's loaders (--import of @tapjs/*), about 0.7 s of CPU per start,
  // for a process that is SIGKILLed and so never writes its coverage anyway.
  const flags = opts.coverage === false ? process.execArgv.filter(arg => !arg.includes('@tapjs')) : process.execArgv
  const args = [...flags, ...(opts.nodeFlags ?? []), projectModule(opts.script ?? 'server'), ...(opts.args ?? [])]
  const options = { cwd: opts.cwd, env: { PATH: process.env.PATH, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] }
  const child = opts.fdLimit === undefined
    ? spawn(process.execPath, args, options)
    : spawn('/bin/sh', ['-c', `ulimit -n ${opts.fdLimit} && exec "$0" "$@"`, process.execPath, ...args], options)
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

/**
 * A loopback port this test opened and closed again, so nothing answers on it: unlike a fixed port
 * (5000, 9), it cannot be a developer's running server or another test's.
 */
export async function closedPort (): Promise<string> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return String(port)
}
