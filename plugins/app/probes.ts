import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Socket } from 'node:net'
import { ProbesBusyError } from '../../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The onRequest hook that paces operational requests (/health, /ready, /ping, /metrics) to
     * PROBES_PER_SECOND across every listener: the API's probe routes and the METRICS_PORT listener.
     */
    paceProbe(request: FastifyRequest, reply: FastifyReply): Promise<void>
    /** The pacer behind it, for its counts. */
    probePacer: ProbePacer
  }
}

export type Admission = 'go' | 'gone' | 'refused'
interface Waiting { socket: Socket, admit: (admission: Admission) => void }

/**
 * A token bucket with a bounded FIFO of waiters. A request over the rate waits for a token instead of
 * being answered at once: a client that floods with N connections gets at most `perSecond` answers a
 * second whatever N is, and, since each connection waits for its answer before sending the next, the
 * flood costs the event loop a parse per answer, not a parse per request it could send. Past
 * `queueMax` waiters a request is refused at once (the flood then has more connections than a
 * scraper and the probes would ever need), but only after a second, as its Retry-After says: a
 * refusal answered at once would let each connection cost a parse as fast as it can resend.
 */
export class ProbePacer {
  readonly #perSecond: number
  readonly #queueMax: number
  #tokens: number
  #refilledAt = performance.now()
  readonly #waiting: Waiting[] = []
  readonly #refuseAfterMs: number
  readonly #refusals = new Set<{ timer: NodeJS.Timeout, resolve: (admission: Admission) => void }>()
  #timer: NodeJS.Timeout | undefined
  /** Requests answered at once, after waiting, refused for a full queue, dropped (client gone while waiting). */
  readonly counts = { immediate: 0, waited: 0, refused: 0, dropped: 0 }

  constructor (perSecond: number, queueMax: number, refuseAfterMs = 1000) {
    this.#perSecond = perSecond
    this.#refuseAfterMs = refuseAfterMs
    this.#queueMax = queueMax
    this.#tokens = perSecond
  }

  get waiting (): number { return this.#waiting.length }

  /**
   * 'go' at once, or a promise of it once a token is the request's; 'gone' if its client left while it
   * waited; 'refused' past the queue, after `refuseAfterMs`, so that a connection refused costs the
   * event loop at most one parse per `refuseAfterMs` however fast its client would resend.
   */
  admit (socket: Socket): 'go' | Promise<Admission> {
    this.#refill()
    if (this.#waiting.length === 0 && this.#tokens >= 1) {
      this.#tokens--
      this.counts.immediate++
      return 'go'
    }
    if (this.#waiting.length >= this.#queueMax) this.#dropGone()
    if (this.#waiting.length >= this.#queueMax) {
      this.counts.refused++
      return new Promise<Admission>(resolve => {
        const refusal = { timer: setTimeout(() => { this.#refusals.delete(refusal); resolve('refused') }, this.#refuseAfterMs), resolve }
        this.#refusals.add(refusal)
      })
    }
    return new Promise<Admission>(resolve => {
      this.#waiting.push({ socket, admit: resolve })
      this.#schedule()
    })
  }

  /** Stops the timer and lets every waiter go (the listener is closing; each gets its answer). */
  close (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    for (const waiting of this.#waiting.splice(0)) waiting.admit('go')
    for (const refusal of this.#refusals) {
      clearTimeout(refusal.timer)
      refusal.resolve('refused')
    }
    this.#refusals.clear()
  }

  #refill (): void {
    const now = performance.now()
    this.#tokens = Math.min(this.#perSecond, this.#tokens + (now - this.#refilledAt) * this.#perSecond / 1000)
    this.#refilledAt = now
  }

  #dropGone (): void {
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const waiting = this.#waiting[i]
      if (!waiting.socket.destroyed) continue
      this.#waiting.splice(i, 1)
      this.counts.dropped++
      waiting.admit('gone')
    }
  }

  #schedule (): void {
    if (this.#timer !== undefined) return
    const wait = Math.max(1, Math.ceil((1 - this.#tokens) * 1000 / this.#perSecond))
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#refill()
      while (this.#waiting.length > 0 && this.#tokens >= 1) {
        const waiting = this.#waiting.shift() as Waiting
        // A client gone while it waited takes no token: it is not answered.
        if (waiting.socket.destroyed) {
          this.counts.dropped++
          waiting.admit('gone')
          continue
        }
        this.#tokens--
        this.counts.waited++
        waiting.admit('go')
      }
      if (this.#waiting.length > 0) this.#schedule()
    }, wait)
  }
}

/**
 * Probes and the scraper are never shed (they must see the overload), but nor may they become the
 * lever that takes the API's event loop: their requests are paced (PROBES_PER_SECOND, PROBE_QUEUE_MAX),
 * one budget for every listener. A kubelet's probes and a scraper need a few a second.
 */
export default fp(async function probes (fastify) {
  const { PROBES_PER_SECOND, PROBE_QUEUE_MAX } = fastify.config
  const pacer = new ProbePacer(PROBES_PER_SECOND, PROBE_QUEUE_MAX)
  fastify.addHook('onClose', async () => { pacer.close() })
  async function paceProbe (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const admitted = pacer.admit(request.raw.socket)
    const admission = admitted === 'go' ? admitted : await admitted
    if (admission === 'go') return
    if (admission === 'refused') {
      // Set here too: the METRICS_PORT listener has no error handler to set it.
      reply.header('retry-after', '1')
      throw new ProbesBusyError(`more than ${PROBE_QUEUE_MAX} probe or scrape requests are waiting (at most ${PROBES_PER_SECOND} are answered a second): retry in 1 s`)
    }
    // Its client left while it waited: nothing to answer.
    reply.hijack()
    request.raw.socket.destroy()
  }
  fastify.decorate('paceProbe', paceProbe)
  fastify.decorate('probePacer', pacer)
  fastify.addHook('onRequest', (request, reply, done) => {
    if (request.routeOptions.config.probe !== true) return done()
    paceProbe(request, reply).then(() => done(), done)
  })
}, { name: 'probes', dependencies: ['env'] })
