/**
 * Run as a child process (test/lazy-sdk.test.ts): builds the app with the environment in APP_ENV,
 * starts and closes it, and prints the AWS packages its main thread imported, one JSON array.
 */
import { mkdtempSync, readFileSync } from 'node:fs'
import { register } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const file = join(mkdtempSync(join(tmpdir(), 'ml-ids-imports-')), 'imports.txt')
// A resolve hook (it runs in the loader's thread) that appends each bare AWS specifier it resolves.
register('data:text/javascript,' + encodeURIComponent(`
  import { appendFileSync } from 'node:fs'
  let file
  export function initialize (data) { file = data.file }
  export async function resolve (specifier, context, next) {
    if (/^@(aws-sdk|smithy)\\//.test(specifier)) appendFileSync(file, specifier + '\\n')
    return next(specifier, context)
  }`), { data: { file } })
const { createApp } = await import('../../app.js')
const app = createApp({ env: JSON.parse(process.env.APP_ENV ?? '{}') as NodeJS.ProcessEnv })
await app.ready()
await app.close()
let lines: string[] = []
try { lines = readFileSync(file, 'utf8').split('\n').filter(Boolean) } catch {}
console.log(JSON.stringify([...new Set(lines)].sort()))
