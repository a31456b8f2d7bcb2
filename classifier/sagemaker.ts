import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime'
import { awsClientConfig } from '../aws-clients.js'
import type { Config } from '../schemas/config.js'
import type { ModelInfo } from '../schemas/model.js'
import type { FastifyBaseLogger } from 'fastify'
import type { PandasSplitFrame, Prediction } from '../schemas/predictions.js'
import { handlingOf, InvalidInputError, ScoresUnavailableError, UpstreamError, UpstreamTimeoutError, UpstreamUnavailableError } from '../errors.js'
import type { Classifier, Scored, WorkOptions } from './types.js'
import { createBatcher } from './batcher.js'
import { createUpstreamHealth } from './upstream-health.js'

const UNREADY_AFTER_FAILURE_MS = 10_000

export const PANDAS_SPLIT = 'application/json; format=pandas-split'

/** How frames are sent: MLflow 1.x's `format=pandas-split` with a bare frame, or 2.x's `{"dataframe_split": ...}`. */
export type InputFormat = 'pandas-split' | 'dataframe_split'

/** A split frame's JSON as the endpoint's MLflow generation wants it: content type and body. */
export function requestFor (format: InputFormat, frameJson: string): { ContentType: string, Body: string } {
  return format === 'pandas-split'
    ? { ContentType: PANDAS_SPLIT, Body: frameJson }
    : { ContentType: 'application/json', Body: `{"dataframe_split":${frameJson}}` }
}

/**
 * Whether an error is an MLflow 2.x scoring server refusing MLflow 1.x's request: 415 "Unrecognized
 * content type parameters: format" for the content type, or 400 asking for `dataframe_split` (and the
 * other 2.x fields) for a bare frame. SageMaker passes the container's answer on as a ModelError.
 */
export function isMlflow2Refusal (err: unknown): boolean {
  const e = err as { name?: string, OriginalStatusCode?: number, OriginalMessage?: string, message?: string }
  if (e.name !== 'ModelError') return false
  const message = `${e.OriginalMessage ?? ''} ${e.message ?? ''}`
  if (e.OriginalStatusCode === 415) return /content type parameters/i.test(message)
  if (e.OriginalStatusCode === 400) return /dataframe_split/.test(message)
  return false
}

/** `my-endpoint` or the earlier service's `/endpoints/my-endpoint/invocations` to `my-endpoint`. */
export function endpointName (value: string): string {
  return /^\/endpoints\/([^/]+)\/invocations$/.exec(value)?.[1] ?? value
}

type SageMakerConfig = Pick<Config, 'AWS_REGION' | 'AWS_SAGEMAKER_ENDPOINT' | 'AWS_SAGEMAKER_HOST' | 'AWS_ACCESS_KEY' | 'AWS_SECRET_KEY' |
'SAGEMAKER_INPUT_FORMAT' | 'ATTACK_THRESHOLD' | 'SAGEMAKER_TIMEOUT_MS' | 'SAGEMAKER_CONNECT_TIMEOUT_MS' | 'SAGEMAKER_MAX_ATTEMPTS' | 'SAGEMAKER_MAX_SOCKETS' |
'SAGEMAKER_MAX_ANSWER_BYTES' | 'SAGEMAKER_BATCHING' | 'SAGEMAKER_BATCH_MAX_ROWS' | 'SAGEMAKER_BATCH_MAX_BYTES' | 'SAGEMAKER_BATCH_WAIT_MS' | 'SAGEMAKER_BATCH_MAX_IN_FLIGHT'>

/**
 * Reads the model's answer: `[...]` (MLflow 1.x) or `{"predictions": [...]}` (2.x), one entry per row.
 * An entry is 0/1, a boolean (read as 0/1), or an attack probability in [0, 1]; a one-element list of
 * those (a column vector) is read as its element.
 */
export function parseAnswer (body: string, rows: number): number[] {
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
    if (typeof value === 'number' && value >= 0 && value <= 1) return value
    throw new UpstreamError(`the model's prediction for row ${i} is not 0, 1 or a probability`)
  })
}

/** Predictions from the answer's entries: a label stays itself, a probability is 1 at `threshold` and above. */
export const predictionsOf = (values: readonly number[], threshold: number): Prediction[] =>
  values.map(value => value >= threshold ? 1 : 0)

/** An answer made only of 0s and 1s is labels, not probabilities: it has no scores to give. */
export const isLabels = (values: readonly number[]): boolean => values.every(value => value === 0 || value === 1)

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

/**
 * Which body the endpoint takes: SAGEMAKER_INPUT_FORMAT, or with `auto` MLflow 1.x's (which 1.x needs)
 * until a 2.x container's first refusal switches it for good; what was found is logged once.
 */
export function createInputFormat (setting: Config['SAGEMAKER_INPUT_FORMAT'], found: (format: InputFormat, message: string) => void) {
  const auto = setting === 'auto'
  let format: InputFormat = setting === 'dataframe_split' ? 'dataframe_split' : 'pandas-split'
  let known = !auto
  return {
    get current (): InputFormat { return format },
    /** A call sent `as` was refused with `err`: the format to send it again in, or the error to throw. */
    refused (as: InputFormat, err: unknown): InputFormat {
      if (as !== 'pandas-split' || !isMlflow2Refusal(err)) throw err
      // Not the client's fault, and not for the client to fix.
      if (!auto) throw Object.assign(new UpstreamError('the SageMaker endpoint runs MLflow 2.x, which refuses pandas-split frames: set SAGEMAKER_INPUT_FORMAT to auto or dataframe_split'), { cause: err })
      // Calls sent before the switch, refused alike, are sent again too.
      if (format === 'pandas-split') {
        format = 'dataframe_split'
        known = true
        found(format, 'the SageMaker endpoint runs MLflow 2.x: sending {"dataframe_split": ...} from now on')
      }
      return 'dataframe_split'
    },
    /** A call was answered: with `auto`, the format in use is the endpoint's. */
    accepted (): void {
      if (known) return
      known = true
      found(format, 'the SageMaker endpoint takes MLflow 1.x pandas-split frames')
    },
  }
}

export function createSageMakerClassifier (config: SageMakerConfig & { AWS_SAGEMAKER_ENDPOINT: string, AWS_REGION: string }, log?: FastifyBaseLogger) {
  const endpoint = endpointName(config.AWS_SAGEMAKER_ENDPOINT)
  // MLflow models answer labels or probabilities; probabilities are read at ATTACK_THRESHOLD, else 0.5.
  const threshold = config.ATTACK_THRESHOLD ?? 0.5
  const formats = createInputFormat(config.SAGEMAKER_INPUT_FORMAT, (format, message) => log?.info({ endpoint, inputFormat: format }, message))
  const client = new SageMakerRuntimeClient({
    ...awsClientConfig(config, {
      region: config.AWS_REGION,
      host: config.AWS_SAGEMAKER_HOST,
      maxSockets: config.SAGEMAKER_MAX_SOCKETS,
      connectTimeoutMs: config.SAGEMAKER_CONNECT_TIMEOUT_MS,
      // Above SageMaker's 60 s model limit, so a slow model answers rather than the socket timing out.
      requestTimeoutMs: config.SAGEMAKER_TIMEOUT_MS,
      maxAnswerBytes: config.SAGEMAKER_MAX_ANSWER_BYTES,
      service: 'the SageMaker endpoint',
    }),
    retryMode: 'standard',
    maxAttempts: config.SAGEMAKER_MAX_ATTEMPTS,
  })

  // Unready while a quarter or more of the last 10 s of calls failed; an idle window is ready again,
  // so a probe that stayed red until the next success cannot keep traffic away for good.
  const health = createUpstreamHealth({ windowMs: UNREADY_AFTER_FAILURE_MS })
  const fail = (reason: string) => health.failure(reason)
  const info: ModelInfo = {
    backend: 'sagemaker',
    name: endpoint,
    threshold,
    labels: { 0: 'benign', 1: 'attack' },
    sagemaker: { endpoint, region: config.AWS_REGION },
  }

  async function send (frameJson: string, as: InputFormat): Promise<string> {
    const response = await client.send(new InvokeEndpointCommand({ EndpointName: endpoint, Accept: 'application/json', ...requestFor(as, frameJson) }))
    return new TextDecoder().decode(response.Body)
  }

  /** One InvokeEndpoint call: a split frame's JSON in, the model's entry per row out (labels or probabilities). */
  async function invoke (frameJson: string, rows: number): Promise<number[]> {
    let answer: string
    try {
      const as = formats.current
      try {
        answer = await send(frameJson, as)
      } catch (err) {
        answer = await send(frameJson, formats.refused(as, err))
      }
      formats.accepted()
    } catch (err) {
      // Our own errors are already written for the client.
      const translated = handlingOf(err) !== undefined ? err as Error : Object.assign(translateError(err), { cause: err })
      // The model refusing the input says nothing about its health.
      if (!(translated instanceof InvalidInputError)) fail(translated.message)
      throw translated
    }
    try {
      const values = parseAnswer(answer, rows)
      health.success()
      return values
    } catch (err) {
      fail((err as Error).message)
      throw err
    }
  }

  async function values (frame: PandasSplitFrame, signal?: AbortSignal): Promise<number[]> {
    if (frame.data.length === 0) return []
    // A request whose client has gone leaves its batch; one sent alone is not sent at all.
    if (batcher !== undefined) return await batcher.submit(frame, signal)
    signal?.throwIfAborted()
    return await invoke(JSON.stringify(frame), frame.data.length)
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
    threshold,
    async predict (frame: PandasSplitFrame, opts: WorkOptions = {}): Promise<Prediction[]> {
      return predictionsOf(await values(frame, opts.signal), threshold)
    },
    async score (frame: PandasSplitFrame, opts: WorkOptions = {}): Promise<Scored> {
      const scores = await values(frame, opts.signal)
      if (scores.length > 0 && isLabels(scores)) {
        throw new ScoresUnavailableError(`the SageMaker endpoint ${endpoint} answers labels, not probabilities: deploy a model that returns the attack probability (e.g. predict_proba) to get scores`)
      }
      return { scores, predictions: predictionsOf(scores, threshold) }
    },
    // SageMaker has no cheap health call on the runtime API: ready unless calls failed upstream lately.
    readiness: () => health.readiness(),
    // With the input format in use: the configured one, or what `auto` found.
    describe: (): ModelInfo => ({ ...info, sagemaker: { endpoint, region: config.AWS_REGION, input_format: formats.current } }),
    async close () {
      await batcher?.close()
      client.destroy()
    },
  } satisfies Classifier
}
