/**
 * A fixed offered load, paced evenly: request k is due at start + k / rate and is sent then on an idle
 * keep-alive connection (when every connection is busy, as soon as one is free, its latency still
 * counted from when it was due: no coordinated omission).
 *
 * autocannon's `overallRate` is not this: each connection sends its share of a second back to back,
 * then waits for the next second (its lib/httpClient.js, `reqsMadeThisSecond`). "1,000 req/s" there is
 * a burst of 1,000 requests at the top of every second: the service flat out, with a queue, for part of
 * the second and idle for the rest (p99 87-290 ms at "100 req/s" of 100 rows, against 4-17 ms paced),
 * which is neither below saturation nor what a deployment with flows arriving spread out sees
 * (bench/README.md, fifth round).
 */
import { connect, type Socket } from 'node:net'

export interface PacedResult {
  /** Requests answered 2xx. */
  ok: number
  non2xx: number
  /** Connection errors. */
  errors: number
  /** Requests due and not answered by a second after the last was due. */
  unanswered: number
  /** Milliseconds from when a request was due to its whole answer. */
  p50_ms: number
  p99_ms: number
}

const HEAD_END = Buffer.from('\r\n\r\n')

/**
 * The length and status of the first whole HTTP/1.1 answer in `data`, or undefined while it is
 * incomplete. The answers measured here (the service's, the bare server's) carry a Content-Length.
 */
export function responseIn (data: Buffer): { length: number, status: number } | undefined {
  const end = data.indexOf(HEAD_END)
  if (end === -1) return undefined
  const head = data.toString('latin1', 0, end)
  const match = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head)
  if (match === null) throw new Error(`an answer without Content-Length: ${head.split('\r\n')[0]}`)
  const length = end + 4 + Number(match[1])
  return data.length >= length ? { length, status: Number(head.slice(9, 12)) } : undefined
}

const percentile = (sorted: readonly number[], p: number) =>
  sorted.length === 0 ? 0 : Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] * 100) / 100

interface Connection {
  socket: Socket
  /** When its request in flight was due (performance.now()). */
  dueAt: number
  unread: Buffer
}

/** `rate` POSTs a second of `body` to `url` for `seconds`, on `connections` keep-alive connections. */
export async function pacedLoad (url: string, body: string, opts: { connections: number, rate: number, seconds: number, contentType: string }): Promise<PacedResult> {
  const target = new URL(url)
  const request = Buffer.from(`POST ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: ${opts.contentType}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  const total = Math.round(opts.rate * opts.seconds)
  const dueAt = (k: number) => start + k * 1000 / opts.rate
  const latencies: number[] = []
  const result = { ok: 0, non2xx: 0, errors: 0 }
  let start = 0
  let sent = 0
  const idle: Connection[] = []
  // When each request that found every connection busy was due, oldest first.
  const waiting: number[] = []
  const send = (connection: Connection, due: number) => {
    connection.dueAt = due
    connection.socket.write(request)
  }

  const connections = await Promise.all(Array.from({ length: opts.connections }, async () => {
    const socket = connect(Number(target.port), target.hostname)
    await connected(socket)
    socket.setNoDelay(true)
    const connection: Connection = { socket, dueAt: 0, unread: Buffer.alloc(0) }
    socket.on('data', (chunk: Buffer) => {
      connection.unread = connection.unread.length === 0 ? chunk : Buffer.concat([connection.unread, chunk])
      for (let answer = responseIn(connection.unread); answer !== undefined; answer = responseIn(connection.unread)) {
        connection.unread = connection.unread.subarray(answer.length)
        latencies.push(performance.now() - connection.dueAt)
        if (answer.status >= 200 && answer.status < 300) result.ok++
        else result.non2xx++
        const next = waiting.shift()
        if (next !== undefined) send(connection, next)
        else idle.push(connection)
      }
    })
    socket.on('error', () => { result.errors++ })
    return connection
  }))
  idle.push(...connections)

  start = performance.now()
  await new Promise<void>(resolve => {
    const tick = () => {
      const now = performance.now()
      for (; sent < total && dueAt(sent) <= now; sent++) {
        const connection = idle.pop()
        if (connection !== undefined) send(connection, dueAt(sent))
        else waiting.push(dueAt(sent))
      }
      if (sent === total) resolve()
      else setTimeout(tick, Math.max(1, dueAt(sent) - performance.now()))
    }
    tick()
  })
  const deadline = performance.now() + 1000
  while (result.ok + result.non2xx < total && performance.now() < deadline) await new Promise(resolve => setTimeout(resolve, 5))
  for (const connection of connections) connection.socket.destroy()
  latencies.sort((a, b) => a - b)
  return { ...result, unanswered: total - result.ok - result.non2xx, p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99) }
}

async function connected (socket: Socket): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
}
