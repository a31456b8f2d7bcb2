import t from 'tap'
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import { splitNodeOptions, threadOptions, withoutPreloads } from '../../threads.js'

t.test('preloads are left out of a thread\'s flags, in both spellings, everything else kept in order', async t => {
  t.same(withoutPreloads(['--enable-source-maps', '--import=file:///a.mjs', '--import', 'b', '-r', 'c.cjs', '--require=d', '--loader', 'e', '--experimental-loader=f', '--max-old-space-size=512']),
    ['--enable-source-maps', '--max-old-space-size=512'])
  t.same(withoutPreloads([]), [])
})

t.test('NODE_OPTIONS splits as Node splits it: spaces, double quotes, backslash escapes', async t => {
  t.same(splitNodeOptions('"--import=file:///a b.mjs" --enable-source-maps  -r x'), ['--import=file:///a b.mjs', '--enable-source-maps', '-r', 'x'])
  t.same(splitNodeOptions('"--title=a \\"q\\""'), ['--title=a "q"'])
  t.same(splitNodeOptions(''), [])
})

t.test('a thread started with threadOptions runs without the preloads of NODE_OPTIONS and keeps the other flags', async t => {
  const saved = process.env.NODE_OPTIONS
  t.teardown(() => { if (saved === undefined) delete process.env.NODE_OPTIONS; else process.env.NODE_OPTIONS = saved })
  process.env.NODE_OPTIONS = '"--require=/nonexistent/preload.cjs" --max-http-header-size=20000'
  const options = threadOptions()
  t.equal(options.env && (options.env as NodeJS.ProcessEnv).NODE_OPTIONS, '--max-http-header-size=20000')
  // A thread that re-read the preload would fail to start: it does not exist.
  const worker = new Worker('require("node:worker_threads").parentPort.postMessage(process.execArgv.join(" ") + "|" + require("node:http").maxHeaderSize)', { eval: true, ...options })
  const [message] = await once(worker, 'message') as [string]
  const [execArgv, maxHeaderSize] = message.split('|')
  t.notMatch(execArgv, /--import|--require|--loader/, 'no preload among its flags')
  t.equal(maxHeaderSize, '20000', 'the other options of NODE_OPTIONS still apply')
  await worker.terminate()
})
