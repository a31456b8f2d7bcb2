import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { Notification } from '../../notifications/message.js'
import type { PandasSplitFrame, Prediction } from '../../schemas/predictions.js'

/**
 * A request whose flows were classified: what was asked, what was answered, and how long it took.
 * A body classified by a worker thread never became a frame here: the worker built its notifications.
 */
export type Classified = {
  requestId: string
  predictions: Prediction[]
  /** The classifier's time, in seconds. */
  seconds: number
} & ({ frame: PandasSplitFrame, notifications?: undefined } | { frame?: undefined, notifications: readonly Notification[] })

export interface ClassificationEvents {
  /** A classified request is answered 200; called before its response is serialised. */
  classified: (classified: Classified) => void
  /** The classifier failed a request with this 5xx status. */
  failed: (statusCode: number) => void
}

/** A check run before a classifying route reads its body; it throws a catalogue error to refuse. */
export type Guard = (request: FastifyRequest) => void

declare module 'fastify' {
  interface FastifyInstance {
    /** Subscribe to classified requests, or guard the routes that classify. */
    classifications: {
      on<E extends keyof ClassificationEvents>(event: E, listener: ClassificationEvents[E]): void
      guard(check: Guard): void
    }
  }
  interface FastifyContextConfig {
    /** The route classifies flows (with `request.classify`): its requests are published, and guarded. */
    classifies?: boolean
  }
  interface FastifyRequest {
    /** Set by `request.classify`; published when the request is answered 200. */
    classified: Classified | null
    /**
     * Classifies `frame` with `run`, records it, and returns run's answer. Only in routes with
     * `config.classifies`. `signal` aborts when the client goes (`request.hold`, which keeps the body's bytes reserved meanwhile).
     */
    classify<T extends { predictions: Prediction[] } | Prediction[]>(frame: PandasSplitFrame, run: (frame: PandasSplitFrame, signal: AbortSignal) => Promise<T>): Promise<T>
    /**
     * The same for work that built its notifications itself (a worker thread's: `request.classifyPooled`,
     * plugins/app/worker-pool.ts): `run` answers the predictions and those notifications.
     */
    classifyBuilt<T extends { predictions: Prediction[], notifications: readonly Notification[] }>(run: (signal: AbortSignal) => Promise<T>): Promise<T>
  }
}

/**
 * The owner of "a classified request". Routes that classify say so (`config: { classifies: true }`)
 * and classify through `request.classify`; this plugin publishes each one, as it is answered, to
 * whoever subscribed (notifications announce it, metrics count it), and runs the guards others add
 * (notifications pause predictions while backlogged) on exactly those routes. No module needs to know
 * which routes classify.
 */
export default fp(async function classifications (fastify) {
  const listeners: { [E in keyof ClassificationEvents]: Array<ClassificationEvents[E]> } = { classified: [], failed: [] }
  const guards: Guard[] = []

  fastify.decorate('classifications', {
    on (event, listener) { (listeners[event] as Array<typeof listener>).push(listener) },
    guard (check) { guards.push(check) },
  })
  fastify.decorateRequest('classified', null)
  fastify.decorateRequest('classify', async function classify<T extends { predictions: Prediction[] } | Prediction[]> (
    this: FastifyRequest, frame: PandasSplitFrame, run: (frame: PandasSplitFrame, signal: AbortSignal) => Promise<T>): Promise<T> {
    const started = performance.now()
    const answer = await timed(this, signal => run(frame, signal))
    const predictions = Array.isArray(answer) ? answer : answer.predictions
    this.classified = { requestId: this.id, frame, predictions, seconds: (performance.now() - started) / 1000 }
    return answer
  })
  fastify.decorateRequest('classifyBuilt', async function classifyBuilt<T extends { predictions: Prediction[], notifications: readonly Notification[] }> (
    this: FastifyRequest, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const started = performance.now()
    const answer = await timed(this, run)
    this.classified = { requestId: this.id, notifications: answer.notifications, predictions: answer.predictions, seconds: (performance.now() - started) / 1000 }
    return answer
  })

  /** Runs a classification of a route that declared it, telling subscribers when the classifier fails. */
  async function timed<T> (request: FastifyRequest, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (request.routeOptions.config.classifies !== true) throw new Error(`${request.routeOptions.url ?? 'this route'} classifies: declare config.classifies`)
    try {
      // The body's bytes stay reserved until the classification ends, even if the client goes.
      return await request.hold(run)
    } catch (err) {
      // A client error (the model refused the input) is not the classifier failing.
      const given = (err as { statusCode?: unknown }).statusCode
      const statusCode = typeof given === 'number' && given >= 400 && given <= 599 ? given : 500
      if (statusCode >= 500) for (const listener of listeners.failed) listener(statusCode)
      throw err
    }
  }

  fastify.addHook('preSerialization', (request, reply, payload, done) => {
    // Routes in contexts made before this decorator (Swagger UI's) have no `classified` at all.
    if (request.classified != null && reply.statusCode === 200) for (const listener of listeners.classified) listener(request.classified)
    done(null, payload)
  })
  // Before the body is read, so a refused request costs nothing.
  fastify.addHook('onRoute', route => {
    if (route.config?.classifies !== true) return
    const guard = (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
      for (const check of guards) check(request)
      done()
    }
    route.onRequest = [...(Array.isArray(route.onRequest) ? route.onRequest : route.onRequest ? [route.onRequest] : []), guard]
  })
}, { name: 'classifications', dependencies: ['bodies'] })
