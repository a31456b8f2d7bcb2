import { constants, fstatSync, openSync } from 'node:fs'
import * as sonicBoomModule from 'sonic-boom'
import type { SonicBoom as SonicBoomClass } from 'sonic-boom'

// sonic-boom is CommonJS (module.exports = SonicBoom): Node's ESM import gives it as the default
// export, which its typings declare as a module: the class's type is stated here.
const SonicBoom = (sonicBoomModule as unknown as { default: typeof SonicBoomClass }).default

/** Log bytes held while stdout is not read, past which lines are dropped (16 MiB). */
export const MAX_BUFFER_BYTES = 16 * 1024 * 1024

/** How long the last flush at exit may wait for a full pipe (a log reader behind) before dropping the rest. */
export const EXIT_FLUSH_MS = 1000

/**
 * Lines are written in batches of at least this many bytes, or LOG_FLUSH_MS after the first of them,
 * whichever comes first. A write per line cost a 1-row request ~35 µs of CPU at a steady 1,000 req/s
 * (a libuv pool thread woken for each write, and the event loop again for its completion:
 * bench/README.md, seventh round).
 */
export const LOG_BATCH_BYTES = 8192

/** The longest a line waits in memory for its batch before it is written anyway. */
export const LOG_FLUSH_MS = 100

/**
 * The descriptor to write `fd`'s lines through: for a pipe, the same pipe opened anew with O_NONBLOCK.
 * A stdout FIFO handed over in blocking mode (as a container runtime or a shell may) blocks a write to
 * it while full until its reader reads: a stuck log reader then held the exit flush for ever, past
 * SIGTERM and SHUTDOWN_TIMEOUT_MS (found by an outside probe). Non-blocking, a full pipe answers EAGAIN,
 * which `retryEAGAIN` bounds. Anything else (a file, a terminal, a socket, no /proc) is written as given.
 */
function nonBlockingPipe (fd: number): number {
  try {
    return fstatSync(fd).isFIFO() ? openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK) : fd
  } catch {
    // Not Linux, or the pipe's reader has gone already (ENXIO): its writes fail as before.
    return fd
  }
}

/**
 * The server's log destination: stdout, written in the background in batches (LOG_BATCH_BYTES, or
 * LOG_FLUSH_MS after a line), and flushed when the process exits, but never for longer than EXIT_FLUSH_MS.
 *
 * pino's own destination (sonic-boom 4) retries a failed write forever in its flush at exit: with
 * stdout a pipe nobody drains (EAGAIN) or whose reader has gone (EPIPE), a SIGTERM never ended the
 * process, SHUTDOWN_TIMEOUT_MS and a second signal included (found by an outside probe). sonic-boom 5's
 * flush throws on EPIPE and asks `retryEAGAIN` before each retry. A pipe that breaks while serving
 * ends the logging, not the process; any other write error is said once on stderr. Lines wait in
 * memory while stdout is not read, up to MAX_BUFFER_BYTES; past it they are dropped and counted, and the
 * count is logged once lines flow again.
 */
export function logDestination (fd = 1, opts: { maxBufferBytes?: number } = {}) {
  let exitingSince: number | undefined
  const destination = new SonicBoom({
    fd: nonBlockingPipe(fd),
    // While serving, a full pipe is waited for (in the background); at exit, for EXIT_FLUSH_MS.
    retryEAGAIN: () => exitingSince === undefined || Date.now() - exitingSince < EXIT_FLUSH_MS,
    // A reader that stops (a logging driver in blocking mode, stuck) must not grow memory without end:
    // past this many bytes waiting, lines are dropped, and counted.
    maxLength: opts.maxBufferBytes ?? MAX_BUFFER_BYTES,
    minLength: LOG_BATCH_BYTES,
  })
  // A batch short of LOG_BATCH_BYTES is written LOG_FLUSH_MS after its first line. flush with a
  // callback also finishes the lines that came while a write was in flight (or waiting on a full
  // pipe), which sonic-boom would otherwise keep until the batch filled; it holds listeners until the
  // buffer is empty, so one is asked at a time: while lines keep coming, it keeps writing them.
  let flushTimer: NodeJS.Timeout | undefined
  let flushing = false
  const flushBatch = () => {
    flushTimer = undefined
    if (flushing) return
    flushing = true
    destination.flush(() => { flushing = false })
  }
  const writeLine = destination.write.bind(destination)
  destination.write = (line: string) => {
    const ok = writeLine(line)
    if (flushTimer === undefined) flushTimer = setTimeout(flushBatch, LOG_FLUSH_MS).unref()
    return ok
  }
  let dropped = 0
  destination.on('drop', () => { dropped++ })
  // Once lines flow again, a line says how many were dropped.
  destination.on('write', () => {
    if (dropped === 0) return
    const count = dropped
    dropped = 0
    destination.write(`${JSON.stringify({ level: 40, time: Date.now(), dropped: count, msg: 'log lines dropped: stdout was not read while the log buffer was full' })}\n`)
  })
  let failed = false
  destination.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') {
      destination.write = () => true
      destination.flushSync = () => {}
      clearTimeout(flushTimer)
    } else if (!failed) {
      failed = true
      process.stderr.write(`${JSON.stringify({ level: 50, time: Date.now(), msg: `writing the log failed: ${err.message}` })}\n`)
    }
  })
  const flushAtExit = () => {
    exitingSince = Date.now()
    try {
      destination.flushSync()
    } catch {
      // The pipe broke or stayed full: what is left of the log is dropped, the process still exits.
    }
  }
  process.on('exit', flushAtExit)
  const stop = () => {
    process.off('exit', flushAtExit)
    clearTimeout(flushTimer)
  }
  return { destination, flushAtExit, dropped: () => dropped, stop }
}
