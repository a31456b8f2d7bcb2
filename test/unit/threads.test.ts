import t from 'tap'
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import { refusedFlags, splitNodeOptions, startThread, threadOptions, withoutPreloads } from '../../threads.js'

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

t.test('the flags a refusal names are found among those given, as given', async t => {
  t.same(refusedFlags('Initiated Worker with invalid execArgv flags: --max-old-space-size=100, --title=abc', ['--enable-source-maps', '--max-old-space-size=100', '--title=abc']),
    ['--max-old-space-size=100', '--title=abc'])
  t.same(refusedFlags('Initiated Worker with invalid execArgv flags: --title=a, b', ['--title=a, b']), [], 'a value with ", " in it is not recognised (threads then start without flags)')
})

t.test('a thread started while the process has V8 flags a worker refuses runs without them, and so do later ones', async t => {
  const saved = process.execArgv
  t.teardown(() => { process.execArgv = saved })
  process.execArgv = [...saved, '--max-old-space-size=300', '--enable-source-maps', '--stack-size=900']
  t.throws(() => new Worker('0', { eval: true, ...threadOptions() }), { code: 'ERR_WORKER_INVALID_EXEC_ARGV' }, 'Node refuses them as they are')
  const source = new URL('data:text/javascript,import { parentPort } from "node:worker_threads"; parentPort.postMessage(process.execArgv)')
  for (const round of ['first', 'later']) {
    const worker = startThread(source, {})
    const [execArgv] = await once(worker, 'message') as [string[]]
    t.notOk(execArgv.some(flag => flag.startsWith('--max-old-space-size') || flag.startsWith('--stack-size')), `${round} thread: without the refused flags`)
    t.ok(execArgv.includes('--enable-source-maps'), `${round} thread: with the flags a thread takes`)
    await worker.terminate()
  }
  t.notOk(threadOptions().execArgv?.includes('--max-old-space-size=300'), 'remembered')
})
