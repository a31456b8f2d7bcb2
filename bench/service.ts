import { once } from 'node:events'
import { createServer } from 'node:net'

/** A loopback port free at the moment of asking, for a service the bench starts. */
export async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  return port
}

/** Waits until the service at `url` answers /ready, polling every 50 ms, for `attempts` polls at most. */
export async function untilReady (url: string, name: string, attempts: number): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/ready`)).ok) return
    } catch {}
    if (i > attempts) throw new Error(`${name}: the service did not start`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/**
 * A 1 ms ticker on this process's event loop: the longest gap between its ticks is the longest the loop
 * was held. `restart()` starts the gap anew (after a warm-up); `stop()` ends it and answers the gap (ms).
 */
export function holdMeter () {
  let last = performance.now()
  let held = 0
  const ticker = setInterval(() => {
    const now = performance.now()
    held = Math.max(held, now - last)
    last = now
  }, 1)
  return {
    restart () { last = performance.now() },
    stop () {
      clearInterval(ticker)
      return held
    },
  }
}
