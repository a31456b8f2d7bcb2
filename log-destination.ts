import * as sonicBoomModule from 'sonic-boom'
import type { SonicBoom as SonicBoomClass } from 'sonic-boom'

// sonic-boom is CommonJS (module.exports = SonicBoom): Node's ESM import gives it as the default
// export, which its typings declare as a module: the class's type is stated here.
const SonicBoom = (sonicBoomModule as unknown as { default: typeof SonicBoomClass }).default

/** How long the last flush at exit may wait for a full pipe (a log reader behind) before dropping the rest. */
export const EXIT_FLUSH_MS = 1000

/**
 * The server's log destination: stdout, written in the background, and flushed when the process
 * exits, but never for longer than EXIT_FLUSH_MS.
 *
 * pino's own destination (sonic-boom 4) retries a failed write forever in its flush at exit: with
 * stdout a pipe nobody drains (EAGAIN) or whose reader has gone (EPIPE), a SIGTERM never ended the
 * process, SHUTDOWN_TIMEOUT_MS and a second signal included (found by an outside probe). sonic-boom 5's
 * flush throws on EPIPE and asks `retryEAGAIN` before each retry. A pipe that breaks while serving
 * ends the logging, not the process; any other write error is said once on stderr.
 */
export function logDestination (fd = 1) {
  let exitingSince: number | undefined
  const destination = new SonicBoom({
    fd,
    // While serving, a full pipe is waited for (in the background); at exit, for EXIT_FLUSH_MS.
    retryEAGAIN: () => exitingSince === undefined || Date.now() - exitingSince < EXIT_FLUSH_MS,
  })
  let failed = false
  destination.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') {
      destination.write = () => true
      destination.flushSync = () => {}
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
  return { destination, flushAtExit, stop: () => { process.off('exit', flushAtExit) } }
}
