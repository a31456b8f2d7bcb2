import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import ValidatorSelector from '@fastify/ajv-compiler'

type Serializer = (doc: unknown) => string
const compiled = new Map<string, Serializer>()

/** How many serializers have been compiled in this process (for the test that they are shared). */
export const compiledSerializers = () => compiled.size

/**
 * Fastify's response serializer factory (fast-json-stringify, as Fastify builds it by default), with
 * the serializers it compiles shared by content: every route declares the same `ErrorResponse` for each
 * error status it can answer, and Fastify compiles one serializer per route and status, so without this
 * the same few schemas were compiled about 120 times at start-up (~40 ms of CPU, and again in each app
 * a test builds). A serializer is a pure function of its schema, the shared schemas and the options,
 * which together are the key.
 */
export function sharedSerializers () {
  const select = SerializerSelector()
  return function buildSerializer (externalSchemas?: unknown, options?: Parameters<typeof select>[1]) {
    const build = select(externalSchemas, options)
    const context = JSON.stringify([externalSchemas, options])
    return function compile (route: Parameters<typeof build>[0]): Serializer {
      const key = `${context}\n${JSON.stringify(route.schema)}`
      let serializer = compiled.get(key)
      if (serializer === undefined) {
        serializer = build(route)
        compiled.set(key, serializer)
      }
      return serializer
    }
  }
}

/**
 * Fastify's validator factory (@fastify/ajv-compiler, as Fastify builds it by default) made once for
 * the process rather than once per app: it keeps one Ajv per set of shared schemas and options, so the
 * apps a process builds (the tests build hundreds) compile into one Ajv and reuse its cache.
 */
export const sharedValidators = ValidatorSelector()
