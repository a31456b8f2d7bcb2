import fp from 'fastify-plugin'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { depthScanner, MAX_JSON_DEPTH } from '../../classifier/body.js'
import { BodyStalledError, JsonTooDeepError, OverloadedError } from '../../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Request-body bytes reserved right now, across all requests. */
    bodyBytesInFlight(): number
  }
}

// Fastify never reads the bodies of these.
const BODYLESS = new Set(['GET', 'HEAD', 'TRACE'])

const hasBody = (request: FastifyRequest) => !BODYLESS.has(request.method) &&
  (request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length']) > 0)

/**
 * A body that is already here whole (a small one comes with its headers): nothing more can arrive or
 * stall, so it needs no stream wrapper and no timer, only its depth checked on the bytes. Puts the
 * bytes back for Fastify to read and answers true; false (nothing read) when the body is still coming.
 */
function arrivedWhole (payload: Readable, declared: number, withinDepth: (chunk: Buffer) => boolean): boolean {
  if (payload.readableFlowing === true || payload.readableLength !== declared) return false
  const bytes = payload.read() as Buffer | null
  if (bytes === null) return false
  if (!withinDepth(bytes)) throw new JsonTooDeepError(MAX_JSON_DEPTH)
  payload.unshift(bytes)
  return true
}

/**
 * Bounds what request bodies can cost, before and while they are read:
 * - bytes held across all requests: a body's declared length (or, chunked, each chunk as it comes) is
 *   reserved until its response is done; past MAX_BODY_BYTES_IN_FLIGHT new bodies get 503 with
 *   Retry-After unread, and their connection is closed;
 * - progress: a body that sends nothing for BODY_STALL_TIMEOUT_MS is cut off with 408 (one that has
 *   arrived whole by then, as small ones do, needs no timer: arrivedWhole);
 * - nesting: JSON deeper than MAX_JSON_DEPTH is refused (400) from a scan of its bytes, before
 *   JSON.parse would spend seconds on millions of brackets (bodies for a worker thread: scanned
 *   there, by the parse function both threads call).
 * Runs in preParsing, after authentication: refused requests reserve nothing.
 */
export default fp(async function bodies (fastify) {
  const { MAX_BODY_BYTES_IN_FLIGHT, BODY_STALL_TIMEOUT_MS, PRESSURE_RETRY_AFTER_S } = fastify.config
  let inFlight = 0
  fastify.decorate('bodyBytesInFlight', () => inFlight)

  // Answered 503 with Retry-After (the catalogue's); the connection closes, its body unread.
  function refusal (reply: FastifyReply) {
    reply.header('connection', 'close')
    return new OverloadedError(`too many request bodies in flight (${MAX_BODY_BYTES_IN_FLIGHT} bytes): retry in ${PRESSURE_RETRY_AFTER_S} s`)
  }

  fastify.addHook('preParsing', async (request, reply, payload) => {
    if (!hasBody(request)) return payload
    const declared = Number(request.headers['content-length'])
    const known = Number.isFinite(declared) && request.headers['transfer-encoding'] === undefined
    // Over the route's limit it is answered 413 unread: nothing to reserve.
    if (known && declared > (request.routeOptions.bodyLimit ?? Infinity)) return payload
    let reserved = 0
    const reserve = (bytes: number) => {
      if (inFlight + bytes > MAX_BODY_BYTES_IN_FLIGHT) return false
      inFlight += bytes
      reserved += bytes
      return true
    }
    if (known ? !reserve(declared) : inFlight >= MAX_BODY_BYTES_IN_FLIGHT) throw refusal(reply)
    reply.raw.once('close', () => {
      inFlight -= reserved
      reserved = 0
    })

    // A body a worker thread will parse is scanned there, before JSON.parse (classifier/body.ts), not here.
    const pooled = known && declared >= (request.routeOptions.config.pooledFromBytes ?? Infinity)
    const withinDepth = !pooled && /json/i.test(request.headers['content-type'] ?? '') ? depthScanner(MAX_JSON_DEPTH) : () => true
    if (known && arrivedWhole(payload, declared, withinDepth)) return payload
    const stall = setTimeout(() => {
      reply.header('connection', 'close')
      guarded.destroy(new BodyStalledError(BODY_STALL_TIMEOUT_MS))
    }, BODY_STALL_TIMEOUT_MS).unref()
    const guarded = new Transform({
      transform (chunk: Buffer, _encoding, done: TransformCallback) {
        stall.refresh()
        if (!known && !reserve(chunk.length)) return done(refusal(reply))
        if (!withinDepth(chunk)) {
          // The rest is read and dropped (never held) rather than left in the socket, so a client still
          // sending gets the 400 before Fastify closes the connection, not a reset.
          payload.unpipe(guarded)
          payload.resume()
          return done(new JsonTooDeepError(MAX_JSON_DEPTH))
        }
        done(null, chunk)
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
  })
}, { name: 'bodies', dependencies: ['env'] })
