import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { projectRoot } from '../../project.js'

/**
 * server.ts (or another entry point, with arguments) as its own process, through the same TypeScript
 * loader as this test; with `fdLimit`, under a shell's `ulimit -n` (the process then is the shell's
 * exec, so its pid is the server's).
 */
export function startServer (env: NodeJS.ProcessEnv, opts: { script?: string, args?: string[], fdLimit?: number } = {}) {
  const args = [...process.execArgv, join(projectRoot(), opts.script ?? 'server.ts'), ...(opts.args ?? [])]
  const options = { env: { PATH: process.env.PATH, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] }
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
