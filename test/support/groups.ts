import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'

/**
 * Runs every test file of test/<folder>/ in this one process, one file after another, in name order.
 *
 * tap gives each file a process of its own, and under its coverage loader a start costs ~0.9 s of CPU
 * (tap itself) plus ~1 s (the app's modules through the loader's hooks). For a file whose tests take a
 * second or two that is most of its cost: 38 such files cost 167 s of CPU one per process and 31 s in
 * one. Files that start servers or browsers, spawn processes or take long stay in test/ with a process
 * each. A grouped file still runs alone: `npx tap dist/test/unit/batcher.test.js`.
 */
export async function runFilesIn (folder: 'unit' | 'app', timeoutMs: number): Promise<void> {
  // The folder's files run in one process, so its timeout is theirs together, not one file's.
  t.setTimeout(timeoutMs)
  const dir = fileURLToPath(new URL(`../${folder}/`, import.meta.url))
  const suffix = import.meta.url.endsWith('.ts') ? '.test.ts' : '.test.js'
  const files = readdirSync(dir).filter(name => name.endsWith(suffix)).sort()
  // tap starts a file's tests as soon as they are declared. Loading the next files (ESLint, the app,
  // the AWS SDK) holds the event loop for up to a second, so no test starts until all are loaded.
  let loaded!: (count: number) => void
  let failed!: (err: unknown) => void
  const loading = new Promise<number>((resolve, reject) => { loaded = resolve; failed = reject })
  t.test(`the test files of test/${folder}/ load`, async t => {
    t.equal(await loading, files.length, `${files.length} files`)
    t.ok(files.length > 0)
  })
  try {
    for (const name of files) await import(pathToFileURL(join(dir, name)).href)
    loaded(files.length)
  } catch (err) {
    failed(err)
  }
}
