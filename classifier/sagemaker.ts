import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import type { Config } from '../schemas/config.js'
import type { ModelInfo } from '../schemas/model.js'
import type { PandasSplitFrame, Prediction } from '../schemas/predictions.js'
import { InvalidInputError, UpstreamError, UpstreamTimeoutError, UpstreamUnavailableError } from './errors.js'
import type { Classifier } from './types.js'
import { createBatcher } from './batcher.js'
import { createUpstreamHealth } from './upstream-health.js'

const UNREADY_AFTER_FAILURE_MS = 10_000

export const PANDAS_SPLIT = 'application/json; format=pandas-split'

/** `my-endpoint` or the earlier service's `/endpoints/my-endpoint/invocations` to `my-endpoint`. */
export function endpointName (value: string): string {
  return /^\/endpoints\/([^/]+)\/invocations$/.exec(value)?.[1] ?? value
}

/** `runtime.sagemaker.eu-west-1.amazonaws.com` gets https://; a full URL (a local emulator) is kept. */
export function endpointUrl (host: string | undefined): string | undefined {
  if (host === undefined) return undefined
  return /^[a-z]+:\/\//i.test(host) ? host : `https://${host}`
}

type SageMakerConfig = Pick<Config, 'AWS_REGION' | 'AWS_SAGEMAKER_ENDPOINT' | 'AWS_SAGEMAKER_HOST' | 'AWS_ACCESS_KEY' | 'AWS_SECRET_KEY' |
'SAGEMAKER_TIMEOUT_MS' | 'SAGEMAKER_CONNECT_TIMEOUT_MS' | 'SAGEMAKER_MAX_ATTEMPTS' | 'SAGEMAKER_MAX_SOCKETS' |
'SAGEMAKER_BATCHING' | 'SAGEMAKER_BATCH_MAX_ROWS' | 'SAGEMAKER_BATCH_MAX_BYTES' | 'SAGEMAKER_BATCH_WAIT_MS' | 'SAGEMAKER_BATCH_MAX_IN_FLIGHT'>

/**
 * Reads the model's answer: `[...]` (MLflow 1.x) or `{"predictions": [...]}` (2.x), one entry per row.
 * An entry is 0/1, a boolean, or an attack probability in [0, 1] (1 at 0.5 and above); a one-element
 * list of those (a column vector) is read as its element.
 */
export function parsePredictions (body: string, rows: number): Prediction[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    throw new UpstreamError('the model answered something that is not JSON')
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { predictions?: unknown })?.predictions
  if (!Array.isArray(list)) throw new UpstreamError('the model answered JSON that is neither a list nor {"predictions": [...]}')
  if (list.length !== rows) throw new UpstreamError(`the model answered ${list.length} predictions for ${rows} rows`)
  return list.map((entry: unknown, i) => {
    const value = Array.isArray(entry) && entry.length === 1 ? entry[0] : entry
    if (typeof value === 'boolean') return value ? 1 : 0
    if (typeof value === 'number' && value >= 0 && value <= 1) return value >= 0.5 ? 1 : 0
    throw new UpstreamError(`the model's prediction for row ${i} is not 0, 1 or a probability`)
  })
}

/** SDK error to an HTTP error the client may see: no ARNs, account ids, credentials or stacks. */
export function translateError (err: unknown): Error {
  const e = err as { name?: string, code?: string, OriginalStatusCode?: number, $metadata?: { httpStatusCode?: number } }
  if (e.name === 'TimeoutError' || e.code === 'ETIMEDOUT' || e.name === 'AbortError') {
    return new UpstreamTimeoutError('the SageMaker endpoint did not answer in time')
  }
  // The model container rejected the input (MLflow answers 400 for a frame that does not fit its schema).
  if (e.name === 'ModelError' && e.OriginalStatusCode !== undefined && e.OriginalStatusCode >= 400 && e.OriginalStatusCode < 500) {
    return new InvalidInputError(`the model rejected the input (status ${e.OriginalStatusCode}): check the columns and values`)
  }
  const status = e.$metadata?.httpStatusCode
  if (status === 429 || e.name === 'ThrottlingException' || e.name === 'ServiceUnavailable' || e.name === 'ModelNotReadyException') {
    return new UpstreamUnavailableError(`the SageMaker endpoint is overloaded or not ready (${e.name ?? status}): retry shortly`)
  }
  const what = status !== undefined ? `status ${status}${e.name ? `, ${e.name}` : ''}` : (e.code ?? e.name ?? 'network error')
  return new UpstreamError(`the SageMaker endpoint failed (${what})`)
}

export function createSageMakerClassifier (config: SageMakerConfig & { AWS_SAGEMAKER_ENDPOINT: string, AWS_REGION: string }) {
  const endpoint = endpointName(config.AWS_SAGEMAKER_ENDPOINT)
  const agentOptions = { keepAlive: true, maxSockets: config.SAGEMAKER_MAX_SOCKETS }
  const client = new SageMakerRuntimeClient({
    region: config.AWS_REGION,
    endpoint: endpointUrl(config.AWS_SAGEMAKER_HOST),
    // Absent keys leave the SDK's default chain (environment, profile, ECS task role, instance role).
    credentials: config.AWS_ACCESS_KEY !== undefined && config.AWS_SECRET_KEY !== undefined
      ? { accessKeyId: config.AWS_ACCESS_KEY, secretAccessKey: config.AWS_SECRET_KEY }
      : undefined,
    retryMode: 'standard',
    maxAttempts: config.SAGEMAKER_MAX_ATTEMPTS,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: config.SAGEMAKER_CONNECT_TIMEOUT_MS,
      // Above SageMaker's 60 s model limit, so a slow model answers rather than the socket timing out.
      requestTimeout: config.SAGEMAKER_TIMEOUT_MS,
      // Without this the handler only logs a warning when the request timeout passes.
      throwOnRequestTimeout: true,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    }),
  })

  // Unready while a quarter or more of the last 10 s of calls failed; an idle window is ready again,
  // so a probe that stayed red until the next success cannot keep traffic away for good.
  const health = createUpstreamHealth({ windowMs: UNREADY_AFTER_FAILURE_MS })
  const fail = (reason: string) => health.failure(reason)
  const info: ModelInfo = {
    backend: 'sagemaker',
    name: endpoint,
    labels: { 0: 'benign', 1: 'attack' },
    sagemaker: { endpoint, region: config.AWS_REGION },
  }

  /** One InvokeEndpoint call: a pandas-split body in, one prediction per row out. */
  async function invoke (body: string, rows: number): Promise<Prediction[]> {
    let answer: string
    try {
      const response = await client.send(new InvokeEndpointCommand({ EndpointName: endpoint, ContentType: PANDAS_SPLIT, Accept: 'application/json', Body: body }))
      answer = new TextDecoder().decode(response.Body)
    } catch (err) {
      const translated = translateError(err)
      if ((translated as { statusCode?: number }).statusCode !== 400) fail(translated.message)
      throw Object.assign(translated, { cause: err })
    }
    try {
      const predictions = parsePredictions(answer, rows)
      health.success()
      return predictions
    } catch (err) {
      fail((err as Error).message)
      throw err
    }
  }

  const batcher = config.SAGEMAKER_BATCHING === 'on'
    ? createBatcher(invoke, {
      maxRows: config.SAGEMAKER_BATCH_MAX_ROWS,
      maxBytes: config.SAGEMAKER_BATCH_MAX_BYTES,
      maxWaitMs: config.SAGEMAKER_BATCH_WAIT_MS,
      maxInFlight: config.SAGEMAKER_BATCH_MAX_IN_FLIGHT,
    })
    : undefined

  return {
    backend: 'sagemaker',
    async predict (frame: PandasSplitFrame): Promise<Prediction[]> {
      if (frame.data.length === 0) return []
      return batcher !== undefined ? await batcher.submit(frame) : await invoke(JSON.stringify(frame), frame.data.length)
    },
    // SageMaker has no cheap health call on the runtime API: ready unless calls failed upstream lately.
    readiness: () => health.readiness(),
    describe: () => info,
    async close () {
      await batcher?.close()
      client.destroy()
    },
  } satisfies Classifier
}
