import type { SNSClient } from '@aws-sdk/client-sns'
import { deserializerMiddlewareOption, operation, serializerMiddlewareOption } from '@smithy/core/schema'
import { getSmithyContext, HttpResponse, toEndpointV1, type HttpRequest } from '@smithy/core/transport'
import type { DeserializeMiddleware, HandlerExecutionContext, OperationSchema, SerializeMiddleware, StaticOperationSchema } from '@smithy/types'

/**
 * The SNS client's per-call work that need not be done per call, with the SDK's client otherwise as it
 * is (credentials, endpoint resolution, SigV4, retries, errors).
 *
 * The resolved client config is a 44-key object in V8's dictionary mode: each `{ ...config }` of it
 * costs ~8 µs here (a copy of a fast-mode object, ~0.1 µs), and the SDK makes four per call:
 *
 * - the signer: `config.signer` builds a new SignatureV4 from `{ ...config }` on every call. Built once
 *   and reused: it reads the credentials, region and clock offset from the client's providers when it
 *   signs, and its signing-key cache is the module's, shared by all instances anyway.
 * - the serializer and deserializer middleware (`getSchemaSerdePlugin`) hand the protocol
 *   `{ ...config, ...context }`; ours hand it the endpoint and the client's serde functions, the only
 *   parts of it the Query protocol reads (`endpoint()` to build the request, `streamCollector` to read
 *   the answer), and otherwise do what the SDK's do, error decoration included.
 * - the endpoint middleware copies the config it is given: `handlerConfig` gives it a fast-mode copy
 *   (see createSender).
 */

type Config = SNSClient['config']
/** The protocol's two calls, as these middleware make them. */
interface Protocol {
  serializeRequest: (operation: OperationSchema, input: object, context: object) => Promise<unknown>
  deserializeResponse: (operation: OperationSchema, context: object, response: HttpResponse) => Promise<object>
}
type Context = HandlerExecutionContext & { endpointV2?: Parameters<typeof toEndpointV1>[0] }

function operationOf (context: HandlerExecutionContext) {
  const [, namespace, name, traits, input, output] = getSmithyContext(context).operationSchema as StaticOperationSchema
  return operation(namespace, name, traits, input, output)
}

/** The client's serde functions: what the protocol reads of `{ ...config, ...context }` besides the endpoint. */
function serdeOf (config: Config) {
  return {
    base64Decoder: config.base64Decoder,
    base64Encoder: config.base64Encoder,
    utf8Decoder: config.utf8Decoder,
    utf8Encoder: config.utf8Encoder,
    streamCollector: config.streamCollector,
    disableHostPrefix: config.disableHostPrefix,
  }
}

/** The SDK's schemaSerializationMiddleware, without the copy of the config. */
const serializer = (config: Config, serde: ReturnType<typeof serdeOf>): SerializeMiddleware<object, object> => (next, context: Context) => async args => {
  const v2 = context.endpointV2
  const endpoint = v2 !== undefined ? async () => toEndpointV1(v2) : config.endpoint!
  const request = await (config.protocol as unknown as Protocol).serializeRequest(operationOf(context), args.input, { ...serde, endpoint })
  return next({ ...args, request: request as HttpRequest })
}

const findHeader = (pattern: RegExp, headers: Array<[string, string]>) => headers.find(([name]) => pattern.test(name))?.[1]

/** The SDK's schemaDeserializationMiddleware, without the copy of the config; errors decorated as it does. */
const deserializer = (config: Config, serde: ReturnType<typeof serdeOf>): DeserializeMiddleware<object, object> => (next, context) => async args => {
  const { response } = await next(args)
  try {
    const output = await (config.protocol as unknown as Protocol).deserializeResponse(operationOf(context), serde, response as HttpResponse)
    return { response, output }
  } catch (err) {
    const error = err as Error & { $metadata?: object, $responseBodyText?: string, $response?: HttpResponse }
    Object.defineProperty(error, '$response', { value: response, enumerable: false, writable: false, configurable: false })
    if (!('$metadata' in error)) {
      const hint = 'Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.'
      try {
        error.message += '\n  ' + hint
      } catch {
        if (!context.logger || context.logger.constructor?.name === 'NoOpLogger') console.warn(hint)
        else context.logger.warn?.(hint)
      }
      if (typeof error.$responseBodyText !== 'undefined' && error.$response) error.$response.body = error.$responseBodyText
      if (HttpResponse.isInstance(response)) {
        const entries = Object.entries(response.headers ?? {})
        error.$metadata = {
          httpStatusCode: response.statusCode,
          requestId: findHeader(/^x-[\w-]+-request-?id$/, entries),
          extendedRequestId: findHeader(/^x-[\w-]+-id-2$/, entries),
          cfId: findHeader(/^x-[\w-]+-cf-id$/, entries),
        }
      }
    }
    throw error
  }
}

/**
 * `make`'s first answer, kept and given to every later call (whose arguments it no longer reads); a
 * failure is not kept (a region provider that failed, say): the next call tries again.
 */
function madeOnce<A extends unknown[], T> (make: (...args: A) => Promise<T>): (...args: A) => Promise<T> {
  let made: Promise<T> | undefined
  return (...args) => (made ??= make(...args).catch(err => { made = undefined; throw err }))
}

/** Makes an SNS client's per-call work cheaper as above; the client's behaviour is the same. */
export function leanStack (client: SNSClient): SNSClient {
  const config = client.config
  config.signer = madeOnce(config.signer)
  // The user agent's sections (SDK and Node versions, os.release(), a syscall) are fixed for the
  // process: built once. The user-agent middleware still escapes and joins them per call, with the
  // call's features, as before; it makes new arrays of them and never changes the one returned.
  config.defaultUserAgentProvider = madeOnce(config.defaultUserAgentProvider)
  // The client's serde functions are fixed once it is built: gathered once, not per call.
  const serde = serdeOf(config)
  client.middlewareStack.add(serializer(config, serde) as never, serializerMiddlewareOption as never)
  client.middlewareStack.add(deserializer(config, serde) as never, deserializerMiddlewareOption as never)
  return client
}

/**
 * The config to resolve a command's handler with (`command.resolveMiddleware(stack, config, options)`):
 * a fast-mode copy of the client's, which the endpoint middleware then copies per call for ~0.1 µs
 * instead of ~8. The endpoint middleware reads only providers from it (region, endpoint, FIPS, dual
 * stack, the endpoint rule set), which do not change after the client is built; the request handler
 * and logger it hands on are the same objects. Everything else in the stack keeps the client's config.
 */
export function handlerConfig (client: SNSClient): Config {
  const config = { ...client.config }
  // A configured endpoint (AWS_SNS_HOST) is a fixed URL that the SDK's provider parsed again each
  // time it was asked, twice a call: parsed once, and each caller gets its own copy of the result.
  if (config.isCustomEndpoint && config.endpoint !== undefined) {
    const parsed = madeOnce(config.endpoint)
    config.endpoint = async () => {
      const { query, headers, ...rest } = await parsed()
      return { ...rest, ...(query !== undefined ? { query: { ...query } } : {}), ...(headers !== undefined ? { headers: { ...headers } } : {}) }
    }
  }
  return config
}
