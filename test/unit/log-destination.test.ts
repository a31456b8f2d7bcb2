import t from 'tap'
import { spawnSync } from 'node:child_process'
import { closeSync, constants, mkdtempSync, openSync, readSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LOG_BATCH_BYTES, LOG_FLUSH_MS, logDestination } from '../../log-destination.js'

/** A FIFO whose read end is open (so writes do not fail) but read only when the test says. */
function fifo () {
  const path = join(mkdtempSync(join(tmpdir(), 'ml-ids-log-')), 'stdout')
  spawnSync('mkfifo', [path])
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  const writer = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK)
  return { reader, writer }
}

/** What the FIFO holds now, read without waiting. */
function drain (fd: number): string {
  const chunks: Buffer[] = []
  const buffer = Buffer.alloc(65536)
  for (;;) {
    try {
      const n = readSync(fd, buffer)
      if (n <= 0) break
      chunks.push(Buffer.from(buffer.subarray(0, n)))
    } catch {
      break
    }
  }
  return Buffer.concat(chunks).toString()
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** Reads the FIFO until `done` says it holds enough, or `ms` pass; returns what it read. */
async function readUntil (fd: number, done: (read: string) => boolean, ms = 3000): Promise<string> {
  let read = ''
  const deadline = Date.now() + ms
  while (!done(read) && Date.now() < deadline) {
    read += drain(fd)
    await sleep(5)
  }
  return read
}

t.test('stdout not read: lines wait up to the bound, then are dropped and counted; once read again, a line says how many', async t => {
  const { reader, writer } = fifo()
  const log = logDestination(writer, { maxBufferBytes: 256 * 1024 })
  t.teardown(() => { log.stop(); closeSync(reader) })
  const line = `${JSON.stringify({ level: 30, msg: 'x'.repeat(1000) })}\n`
  // 4 MiB of lines against a pipe of 64 KiB and a bound of 256 KiB.
  for (let k = 0; k < 4096; k++) log.destination.write(line)
  t.ok(log.dropped() > 3000, `most dropped, not held (${log.dropped()})`)
  // The reader comes back: everything held arrives, then the count.
  const read = await readUntil(reader, read => read.includes('log lines dropped'), 10_000)
  const lines = read.trim().split('\n').map(l => JSON.parse(l) as { msg: string, dropped?: number })
  const note = lines.find(l => l.dropped !== undefined)
  t.ok(note, 'the count is logged')
  t.equal(lines.filter(l => l.dropped === undefined).length + note!.dropped!, 4096, 'every line written or counted')
  const held = lines.length - 1
  t.ok(held <= Math.ceil((64 + 256) * 1024 / line.length) + 1, `no more than the pipe (64 KiB) and the bound held (${held} lines)`)
})

t.test('at exit, a pipe nobody reads holds the process for about a second, not for ever', async t => {
  const { reader, writer } = fifo()
  const log = logDestination(writer)
  t.teardown(() => { log.stop(); closeSync(reader) })
  for (let k = 0; k < 200; k++) log.destination.write(`${'y'.repeat(1000)}\n`)
  const started = Date.now()
  log.flushAtExit()
  const took = Date.now() - started
  t.ok(took >= 900 && took < 3000, `gave up after ${took} ms`)
})

t.test('short lines wait for their batch, and are written LOG_FLUSH_MS after the first one without another line', async t => {
  const { reader, writer } = fifo()
  const log = logDestination(writer)
  t.teardown(() => { log.stop(); closeSync(reader) })
  const started = Date.now()
  for (let k = 0; k < 40; k++) log.destination.write(`${JSON.stringify({ level: 30, k })}\n`)
  await sleep(20)
  t.equal(drain(reader), '', 'nothing written 20 ms later: a write per line is what the batch saves')
  const read = await readUntil(reader, read => read.split('\n').length > 40)
  const took = Date.now() - started
  t.same(read.trim().split('\n').map(l => (JSON.parse(l) as { k: number }).k), Array.from({ length: 40 }, (_, k) => k), 'all 40 lines, in order')
  t.ok(took >= LOG_FLUSH_MS - 5, `written after the flush delay (${took} ms)`)
})

t.test('a full batch is written at once', async t => {
  const { reader, writer } = fifo()
  const log = logDestination(writer)
  t.teardown(() => { log.stop(); closeSync(reader) })
  const line = `${'z'.repeat(999)}\n`
  const lines = Math.ceil(LOG_BATCH_BYTES / line.length)
  for (let k = 0; k < lines; k++) log.destination.write(line)
  const read = await readUntil(reader, read => read.length >= lines * line.length, LOG_FLUSH_MS / 2)
  t.equal(read.length, lines * line.length, `${lines} lines of 1,000 bytes written before the flush delay`)
})

t.test('lines that come while a write waits on a full pipe are written once it drains, with no line after them', async t => {
  const { reader, writer } = fifo()
  const log = logDestination(writer)
  t.teardown(() => { log.stop(); closeSync(reader) })
  // 128 KiB against a pipe of 64 KiB: the write waits for the reader.
  for (let k = 0; k < 128; k++) log.destination.write(`${'w'.repeat(1023)}\n`)
  await sleep(20)
  log.destination.write('{"msg":"the last line"}\n')
  // The flush delay passes while the write still waits.
  await sleep(LOG_FLUSH_MS * 3)
  const read = await readUntil(reader, read => read.includes('the last line'), 5000)
  t.ok(read.endsWith('{"msg":"the last line"}\n'), 'the line written during the wait arrives, last')
  t.equal(read.length, 128 * 1024 + '{"msg":"the last line"}\n'.length, 'every byte, once')
})

t.test('while a write waits, the flush delays that pass ask for one flush, not one each (no listeners pile up)', async t => {
  const { reader, writer } = fifo()
  const log = logDestination(writer)
  t.teardown(() => { log.stop(); closeSync(reader) })
  const listeners = () => log.destination.listenerCount('error')
  const before = listeners()
  // The pipe is full and nobody reads: the write waits while lines keep coming for ten flush delays.
  for (let k = 0; k < 80; k++) log.destination.write(`${'v'.repeat(1023)}\n`)
  for (let k = 0; k < 10; k++) {
    log.destination.write('{"msg":"more"}\n')
    await sleep(LOG_FLUSH_MS + 10)
  }
  t.ok(listeners() - before <= 1, `listeners added: ${listeners() - before}`)
  const read = await readUntil(reader, read => read.split('more').length > 10, 5000)
  t.equal(read.split('more').length - 1, 10, 'every line arrives once the pipe is read')
})
