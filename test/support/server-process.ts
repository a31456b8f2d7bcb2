import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { projectRoot } from '../../project.js'

/** server.ts (or another entry point, with arguments) as its own process, through the same TypeScript loader as this test. */
export function startServer (env: NodeJS.ProcessEnv, script = 'server.ts', args: string[] = []) {
  const child = spawn(process.execPath, [...process.execArgv, join(projectRoot(), script), ...args], {
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
