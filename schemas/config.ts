import { isIP } from 'node:net'
import { Type, type Static } from '@sinclair/typebox'
import { ConfigError } from '../errors.js'

/**
 * The service's configuration, read from the environment by @fastify/env. Declared once: the type
 * below is derived from it, and the table in docs/configuration.md documents it.
 */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ default: 5000, minimum: 0, maximum: 65535 }),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1 }),
  // Unset: /metrics on PORT. Set: /metrics (and /health, /ready) on a listener of their own, off the API's port.
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  // Operational requests (/health, /ready, /ping, /metrics) answered a second, on every listener together;
  // more wait their turn, up to PROBE_QUEUE_MAX, past which 503. Kubelet probes and a scraper need a few.
  PROBES_PER_SECOND: Type.Integer({ default: 100, minimum: 1 }),
  PROBE_QUEUE_MAX: Type.Integer({ default: 64, minimum: 1 }),
  LOG_LEVEL: Type.Union(LOG_LEVELS.map(l => Type.Literal(l)), { default: 'info' }),
  // 6 MB is SageMaker's real-time payload limit: a body that fits here fits the endpoint.
  BODY_LIMIT: Type.Integer({ default: 6 * 1024 * 1024, minimum: 1024 }),
  // Below ECS's 30 s stop timeout, so in-flight work finishes before the task is killed.
  SHUTDOWN_TIMEOUT_MS: Type.Integer({ default: 25000, minimum: 0 }),
  MAX_ROWS: Type.Integer({ default: 10000, minimum: 1 }),
  // Explaining a row costs about 30 predictions: a smaller limit keeps one request's work and answer bounded.
  EXPLAIN_MAX_ROWS: Type.Integer({ default: 1000, minimum: 1 }),
  // The bytes of one /api/explanations body (never more than BODY_LIMIT): 1,000 CICFlowMeter rows as
  // split JSON are ~600 KB, so 2 MiB holds EXPLAIN_MAX_ROWS rows of any usual spelling (padding,
  // long floats, extra columns) while a body over it, which could only be refused for its rows after
  // parsing, is refused unread (413) instead of holding the event loop in JSON.parse.
  EXPLAIN_BODY_LIMIT: Type.Integer({ default: 2 * 1024 * 1024, minimum: 1024 }),
  // Worker threads that parse, check and classify large bodies off the event loop (embedded model
  // only). Unset: os.availableParallelism() less one (the main thread's), at least 1. 0: none, all on the main thread.
  WORKERS: Type.Optional(Type.Integer({ minimum: 0, maximum: 256 })),
  // Bodies of at least this many bytes go to a worker thread; smaller ones are fastest where they are.
  WORKER_MIN_BYTES: Type.Integer({ default: 256 * 1024, minimum: 0 }),
  // Bodies waiting for a free worker thread, by count and by bytes: past either, 503 with Retry-After.
  WORKER_QUEUE_MAX: Type.Integer({ default: 64, minimum: 1 }),
  WORKER_QUEUE_MAX_BYTES: Type.Integer({ default: 16 * 1024 * 1024, minimum: 1024 }),

  MODEL_DIR: Type.Optional(Type.String({ minLength: 1 })),
  // Replaces the model's threshold on every route (and applies to SageMaker endpoints answering probabilities).
  ATTACK_THRESHOLD: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 })),
  // Replaces the unfamiliar-flow detector's threshold (novelty.json beside the model).
  NOVELTY_THRESHOLD: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
  // Recent rows whose feature distributions are compared with the training data's (0: drift not measured).
  DRIFT_WINDOW_ROWS: Type.Integer({ default: 10000, minimum: 0 }),

  AWS_REGION: Type.Optional(Type.String({ minLength: 1, pattern: '^[a-z]{2}(-[a-z]+)+-\\d+$' })),
  AWS_SAGEMAKER_ENDPOINT: Type.Optional(Type.String({ minLength: 1, pattern: '^(/endpoints/[A-Za-z0-9-]{1,63}/invocations|[A-Za-z0-9-]{1,63})$' })),
  AWS_SAGEMAKER_HOST: Type.Optional(Type.String({ minLength: 1 })),
  AWS_ACCESS_KEY: Type.Optional(Type.String({ minLength: 1 })),
  AWS_SECRET_KEY: Type.Optional(Type.String({ minLength: 1 })),
  // MLflow 1.x containers take `format=pandas-split` and a bare split frame; 2.x wants {"dataframe_split": ...}.
  SAGEMAKER_INPUT_FORMAT: Type.Union([Type.Literal('auto'), Type.Literal('pandas-split'), Type.Literal('dataframe_split')], { default: 'auto' }),
  SAGEMAKER_TIMEOUT_MS: Type.Integer({ default: 65000, minimum: 100 }),
  SAGEMAKER_CONNECT_TIMEOUT_MS: Type.Integer({ default: 3000, minimum: 10 }),
  SAGEMAKER_MAX_ATTEMPTS: Type.Integer({ default: 3, minimum: 1, maximum: 10 }),
  SAGEMAKER_MAX_SOCKETS: Type.Integer({ default: 50, minimum: 1 }),
  // SageMaker's own limit on an answer: a larger one is refused (502) unread rather than held in memory.
  SAGEMAKER_MAX_ANSWER_BYTES: Type.Integer({ default: 6 * 1024 * 1024, minimum: 1024 }),
  SAGEMAKER_BATCHING: Type.Union([Type.Literal('on'), Type.Literal('off')], { default: 'on' }),
  SAGEMAKER_BATCH_MAX_ROWS: Type.Integer({ default: 1000, minimum: 1 }),
  // SageMaker's 6 MB payload limit, less headroom for the JSON around the rows.
  SAGEMAKER_BATCH_MAX_BYTES: Type.Integer({ default: 5 * 1024 * 1024, minimum: 1024, maximum: 6 * 1024 * 1024 }),
  SAGEMAKER_BATCH_WAIT_MS: Type.Number({ default: 2, minimum: 0 }),
  SAGEMAKER_BATCH_MAX_IN_FLIGHT: Type.Integer({ default: 16, minimum: 1 }),

  AWS_SNS_PREDICTIONS_TOPIC: Type.Optional(Type.String({ pattern: '^arn:aws[a-z-]*:sns:[a-z0-9-]+:\\d{12}:[A-Za-z0-9_-]{1,256}$' })),
  AWS_SNS_HOST: Type.Optional(Type.String({ minLength: 1 })),
  NOTIFY: Type.Union([Type.Literal('all'), Type.Literal('attacks'), Type.Literal('unfamiliar'), Type.Literal('none')], { default: 'all' }),
  // One message per class per request: 100-row requests cost ~2 SNS messages instead of 100 (see docs/notifications.md).
  NOTIFY_GROUPING: Type.Union([Type.Literal('request'), Type.Literal('row')], { default: 'request' }),
  // Every notification on disk before its response is sent; `fsync` also flushes it to the device.
  NOTIFY_JOURNAL: Type.Union([Type.Literal('on'), Type.Literal('fsync'), Type.Literal('off')], { default: 'on' }),
  NOTIFY_SPILL_MAX_BYTES: Type.Integer({ default: 1024 * 1024 * 1024, minimum: 1024 }),
  NOTIFY_DEAD_LETTER_MAX_BYTES: Type.Integer({ default: 64 * 1024 * 1024, minimum: 0 }),
  NOTIFY_DATA_DIR: Type.String({ default: 'data', minLength: 1 }),
  NOTIFY_LOG_FILE: Type.Optional(Type.String({ minLength: 1 })),
  NOTIFY_QUEUE_SIZE: Type.Integer({ default: 10000, minimum: 10 }),
  // SNS answers in tens of milliseconds: 16 calls in flight carry several thousand notifications a second.
  NOTIFY_CONCURRENCY: Type.Integer({ default: 16, minimum: 1, maximum: 128 }),
  NOTIFY_LINGER_MS: Type.Integer({ default: 50, minimum: 0 }),
  // SNS calls (encoding, signing, sockets) in a thread of their own, off the event loop that answers requests.
  NOTIFY_SENDER: Type.Union([Type.Literal('thread'), Type.Literal('inline')], { default: 'thread' }),
  NOTIFY_MAX_ATTEMPTS: Type.Integer({ default: 10, minimum: 1 }),
  NOTIFY_RETRY_BASE_MS: Type.Integer({ default: 100, minimum: 1 }),
  NOTIFY_RETRY_MAX_MS: Type.Integer({ default: 20000, minimum: 1 }),
  // Below SHUTDOWN_TIMEOUT_MS and ECS's 30 s stop timeout: what is not published by then is spilled.
  NOTIFY_DRAIN_TIMEOUT_MS: Type.Integer({ default: 15000, minimum: 0 }),
  SNS_TIMEOUT_MS: Type.Integer({ default: 10000, minimum: 100 }),

  // Comma-separated; when set, /api/* needs one of them (Authorization: Bearer <key> or x-api-key).
  API_KEYS: Type.Optional(Type.String({ minLength: 1 })),
  RATE_LIMIT_MAX: Type.Integer({ default: 0, minimum: 0, description: 'requests per client per window; 0 = off' }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ default: 60000, minimum: 1000 }),
  // Unset: the peer's address is the client's and X-Forwarded-For is ignored. A hop count, or the
  // proxies' addresses/CIDRs (comma-separated), as Fastify's trustProxy takes them; see parseTrustProxy.
  TRUST_PROXY: Type.Optional(Type.String({ pattern: '^(\\d{1,2}|[0-9A-Za-z.:/]+(\\s*,\\s*[0-9A-Za-z.:/]+)*)$' })),
  CORS_ORIGINS: Type.Optional(Type.String({ minLength: 1 })),
  PRESSURE_MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ default: 1000, minimum: 0 }),
  PRESSURE_MAX_HEAP_MB: Type.Integer({ default: 0, minimum: 0 }),
  // 0: 85% of the memory the process may use (the container's limit, else the machine's).
  PRESSURE_MAX_RSS_MB: Type.Integer({ default: 0, minimum: 0 }),
  PRESSURE_RETRY_AFTER_S: Type.Integer({ default: 5, minimum: 1 }),
  // Request bodies held in memory at once, across all requests. A body costs about three times its
  // size while read and parsed (the bytes, the string, the parsed rows): 32 MB of bodies is ~100 MB
  // of work in flight, which fits a 512 MB container beside the ~150 MB the process needs.
  MAX_BODY_BYTES_IN_FLIGHT: Type.Integer({ default: 32 * 1024 * 1024, minimum: 1024 }),
  // A body that sends nothing for this long is cut off (408).
  BODY_STALL_TIMEOUT_MS: Type.Integer({ default: 10000, minimum: 100 }),
  // 0: the file-descriptor limit less a reserve for upstream sockets and files, at most 10,000.
  MAX_CONNECTIONS: Type.Integer({ default: 0, minimum: 0 }),
  SSE_MAX_BUFFER_BYTES: Type.Integer({ default: 1024 * 1024, minimum: 1024 }),
})

export type Config = Static<typeof ConfigSchema>

const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal'])

/**
 * TRUST_PROXY as Fastify's `trustProxy` option: unset is false (X-Forwarded-For ignored); digits are
 * a hop count (1 behind one balancer); anything else is a list of proxy addresses or CIDR ranges
 * (or proxy-addr's names loopback, linklocal, uniquelocal). `true` is refused: it would let every
 * client choose its own address. Read before Fastify is built, so it throws naming the variable.
 */
export function parseTrustProxy (value: string | undefined): false | number | string[] {
  if (value === undefined || value.trim() === '') return false
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text)
  return text.split(',').map(entry => entry.trim()).map(entry => {
    const [address, bits, ...rest] = entry.split('/')
    const family = isIP(address)
    const prefixOk = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32))
    if (!(NAMED_RANGES.has(entry) || (family !== 0 && prefixOk && rest.length === 0))) {
      throw new ConfigError(`TRUST_PROXY: ${JSON.stringify(entry)} is not a hop count, an address, a CIDR range or loopback/linklocal/uniquelocal`)
    }
    return entry
  })
}
