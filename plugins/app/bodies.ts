import fp from 'fastify-plugin'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Socket } from 'node:net'
import { setMaxListeners } from 'node:events'
import { MAX_JSON_DEPTH, shapeScanner } from '../../input/body.js'
import { BodyStalledError, ClientGoneError, JsonTooDeepError, OverloadedError, TooManyRowsError } from '../../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Request-body bytes reserved right now, across all requests. */
    bodyBytesInFlight(): number
  }
  interface FastifyRequest {
    /**
     * Runs work on this request's body (parse, pool, classification, explanation) and keeps the body's
     * bytes reserved until it settles, even when the client has gone. `signal` aborts when the client
     * goes before its answer is sent: work waiting (pool queue, batcher) or running in slices stops.
     */
    hold<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T>
  }
}

/** A body's share of MAX_BODY_BYTES_IN_FLIGHT: released once its response is over and no work holds it. */
interface Reservation {
  bytes: number
  /** Work running on the body (`request.hold`). */
  holds: number
  /** The response is over: sent, or its client gone. */
  closed: boolean
  /** Aborted when the client goes before the answer is sent: its connection's (connectionGone). */
  readonly gone: AbortSignal
  /** The request's own, where the socket is not a network socket (an injected request). */
  readonly own?: AbortController
}

const goneOf = Symbol('connection gone')

/**
 * One signal per connection, aborted when it closes: a request's client has gone when its connection
 * has (a response that ends before finishing is its socket closing). Made with the connection's first
 * body and shared by the requests that follow on it, rather than an AbortController per request (~3 µs
 * each, half a 1-row request's own hooks).
 */
function connectionGone (socket: Socket): AbortSignal {
  const holder = socket as Socket & { [goneOf]?: AbortController }
  let gone = holder[goneOf]
  if (gone === undefined) {
    const controller = new AbortController()
    // Each request's waiting work (pool queue, batcher) listens while it waits: pipelined requests can be more than ten.
    setMaxListeners(0, controller.signal)
    holder[goneOf] = gone = controller
    if (socket.destroyed) controller.abort(new ClientGoneError())
    else socket.once('close', () => controller.abort(new ClientGoneError()))
  }
  return gone.signal
}

const reservationOf = Symbol('body reservation')
// Requests without a body to reserve: nothing to abort for (their work is not held).
const neverAborted = new AbortController().signal

// Fastify never reads the bodies of these.
const BODYLESS = new Set(['GET', 'HEAD', 'TRACE'])

const hasBody = (request: FastifyRequest) => !BODYLESS.has(request.method) &&
  (request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length']) > 0)

/**
 * A body that is already here whole (a small one comes with its headers): nothing more can arrive or
 * stall, so it needs no stream wrapper and no timer, only its shape (depth, rows) checked on the bytes. Puts the
 * bytes back for Fastify to read and answers true; false (nothing read) when the body is still coming.
 */
function arrivedWhole (payload: Readable, declared: number, check: (bytes: Buffer) => void): boolean {
  if (payload.readableFlowing === true || payload.readableLength !== declared) return false
  const bytes = payload.read() as Buffer | null
  if (bytes === null) return false
  check(bytes)
  payload.unshift(bytes)
  return true
}

/**
 * Bounds what request bodies can cost, before and while they are read:
 * - bytes held across all requests: a body's declared length (or, chunked, each chunk as it comes) is
 *   reserved until its response is done and the last work on it (`request.hold`) has ended, so a client
 *   that disconnects frees nothing while its body still waits or runs; past MAX_BODY_BYTES_IN_FLIGHT
 *   new bodies get 503 with Retry-After unread, and their connection is closed;
 * - `Expect: 100-continue`: answered here, after the guards (401, 429, 503) and the reservation, so a
 *   refused client is told so before it sends its body;
 * - progress: a body that sends nothing for BODY_STALL_TIMEOUT_MS is cut off with 408 (one that has
 *   arrived whole by then, as small ones do, needs no timer: arrivedWhole);
 * - nesting and rows: JSON deeper than MAX_JSON_DEPTH (400, as soon as it is seen), or with a list of
 *   more than MAX_ROWS arrays or objects (413, once the body is in), is refused from a scan of its
 *   bytes as they arrive, before JSON.parse would spend seconds on millions of brackets (bodies for a worker thread: depth scanned there, by
 *   the parse function both threads call).
 * Runs in preParsing, after authentication: refused requests reserve nothing.
 */
export default fp(async function bodies (fastify) {
  const { MAX_BODY_BYTES_IN_FLIGHT, BODY_STALL_TIMEOUT_MS, PRESSURE_RETRY_AFTER_S, MAX_ROWS } = fastify.config
  let inFlight = 0
  fastify.decorate('bodyBytesInFlight', () => inFlight)

  function settle (reservation: Reservation) {
    if (!reservation.closed || reservation.holds > 0) return
    inFlight -= reservation.bytes
    reservation.bytes = 0
  }

  fastify.decorateRequest(reservationOf, null)
  fastify.decorateRequest('hold', async function hold<T> (this: FastifyRequest, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const reservation = (this as unknown as { [reservationOf]: Reservation | null })[reservationOf]
    if (reservation === null) return await work(neverAborted)
    // The client went between two steps: the next one does not start.
    reservation.gone.throwIfAborted()
    reservation.holds++
    try {
      return await work(reservation.gone)
    } finally {
      reservation.holds--
      settle(reservation)
    }
  })

  // Node answers `Expect: 100-continue` itself unless told otherwise: the request goes through the
  // guards first, and preParsing below sends the 100 once the body is welcome.
  fastify.server.on('checkContinue', (req, res) => fastify.server.emit('request', req, res))

  // Answered 503 with Retry-After (the catalogue's); the connection closes, its body unread.
  function refusal (reply: FastifyReply) {
    reply.header('connection', 'close')
    return new OverloadedError(`too many request bodies in flight (${MAX_BODY_BYTES_IN_FLIGHT} bytes): retry in ${PRESSURE_RETRY_AFTER_S} s`)
  }

  // Callback style (an async hook costs every request a promise). The request's hooks before this one
  // are synchronous, so this runs as its headers are parsed, before the bytes that came with them are
  // pushed: the guard waits for the end of that parse (a microtask) to find a small body whole.
  fastify.addHook('preParsing', (request, reply, payload, done) => {
    if (!hasBody(request)) return done(null, payload)
    queueMicrotask(() => {
      let read: Readable
      try {
        read = guard(request, reply, payload)
      } catch (err) {
        return done(err as Error)
      }
      done(null, read)
    })
  })

  function guard (request: FastifyRequest, reply: FastifyReply, payload: Readable): Readable {
    if (!hasBody(request)) return payload
    const declared = Number(request.headers['content-length'])
    const known = Number.isFinite(declared) && request.headers['transfer-encoding'] === undefined
    // Over the route's limit it is answered 413 unread: nothing to reserve.
    if (known && declared > (request.routeOptions.bodyLimit ?? Infinity)) return payload
    const socket = request.raw.socket
    const own = socket instanceof Socket ? undefined : new AbortController()
    const reservation: Reservation = { bytes: 0, holds: 0, closed: false, gone: own?.signal ?? connectionGone(socket), own }
    const reserve = (bytes: number) => {
      if (inFlight + bytes > MAX_BODY_BYTES_IN_FLIGHT) return false
      inFlight += bytes
      reservation.bytes += bytes
      return true
    }
    if (known ? !reserve(declared) : inFlight >= MAX_BODY_BYTES_IN_FLIGHT) throw refusal(reply)
    ;(request as unknown as { [reservationOf]: Reservation })[reservationOf] = reservation
    reply.raw.once('close', () => {
      reservation.closed = true
      if (!reply.raw.writableFinished) reservation.own?.abort(new ClientGoneError())
      settle(reservation)
    })
    if (request.headers.expect?.toLowerCase() === '100-continue') reply.raw.writeContinue()

    // A body a worker thread will parse is scanned there, before JSON.parse (input/body.ts), not here.
    const pooled = known && declared >= (request.routeOptions.config.pooledFromBytes ?? Infinity)
    const shape = !pooled && /json/i.test(request.headers['content-type'] ?? '') ? shapeScanner(MAX_JSON_DEPTH) : undefined
    // Millions of short rows cost JSON.parse seconds: counted in the scan, refused before it.
    const rowsWithinLimit = (): Error | null => {
      const rows = shape?.rows() ?? 0
      return rows > MAX_ROWS ? new TooManyRowsError(`${rows} rows exceed the limit of ${MAX_ROWS} rows per request`) : null
    }
    if (known && arrivedWhole(payload, declared, bytes => {
      if (shape !== undefined && !shape.scan(bytes)) throw new JsonTooDeepError(MAX_JSON_DEPTH)
      const tooMany = rowsWithinLimit()
      if (tooMany !== null) throw tooMany
    })) return payload
    const stall = setTimeout(() => {
      reply.header('connection', 'close')
      guarded.destroy(new BodyStalledError(BODY_STALL_TIMEOUT_MS))
    }, BODY_STALL_TIMEOUT_MS).unref()
    const guarded = new Transform({
      transform (chunk: Buffer, _encoding, done: TransformCallback) {
        stall.refresh()
        if (!known && !reserve(chunk.length)) return done(refusal(reply))
        if (shape !== undefined && !shape.scan(chunk)) {
          // The rest is read and dropped (never held) rather than left in the socket, so a client still
          // sending gets the 400 before Fastify closes the connection, not a reset.
          payload.unpipe(guarded)
          payload.resume()
          return done(new JsonTooDeepError(MAX_JSON_DEPTH))
        }
        done(null, chunk)
      },
      flush (done: TransformCallback) {
        done(rowsWithinLimit())
      },
    })
    const stop = () => clearTimeout(stall)
    guarded.on('end', stop).on('close', stop)
    reply.raw.once('close', stop)
    // Fastify stops listening after the first error; later ones must not go unhandled.
    guarded.on('error', () => {})
    payload.on('error', err => guarded.destroy(err))
    payload.pipe(guarded)
    return guarded
  }
}, { name: 'bodies', dependencies: ['env'] })
