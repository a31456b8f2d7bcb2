import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

export interface RecordedRequest {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
}

export type Handler = (request: RecordedRequest, response: ServerResponse) => void | Promise<void>

/**
 * An HTTP server on 127.0.0.1 that records every request and answers with the current handler:
 * the stand-in for an AWS service in tests, spoken to by the real SDK clients.
 */
export async function loopback (t: Test, handler: Handler) {
  const requests: RecordedRequest[] = []
  const state = { handler }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', chunk => chunks.push(chunk))
    req.on('end', () => {
      const recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }
      requests.push(recorded)
      Promise.resolve(state.handler(recorded, res)).catch(err => {
        res.statusCode = 599
        res.end(String(err))
      })
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    /** Answers later requests differently. */
    answer (next: Handler) { state.handler = next },
  }
}

export function json (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(typeof body === 'string' ? body : JSON.stringify(body))
}

/** What SageMaker answers when the model container answers an error: HTTP 424, x-amzn-errortype ModelError. */
export function modelError (res: ServerResponse, originalStatus: number, originalMessage: string) {
  json(res, 424, {
    ErrorCode: originalStatus < 500 ? 'CLIENT_ERROR_FROM_MODEL' : 'SERVER_ERROR_FROM_MODEL',
    OriginalStatusCode: originalStatus,
    OriginalMessage: originalMessage,
    LogStreamArn: 'arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/ml-ids-prod',
    message: `Received client error (${originalStatus}) from primary with message "${originalMessage}". See https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logEventViewer:group=/aws/sagemaker/Endpoints/ml-ids-prod in account 123456789012 for more information.`,
  }, { 'x-amzn-errortype': 'ModelError' })
}

const SCORING_PROTOCOL_CHANGE_INFO = 'IMPORTANT: The MLflow Model scoring protocol has changed in MLflow version 2.0. If you are seeing this error, you are likely using an outdated scoring request format. To resolve the error, either update your request format or adjust your MLflow Model\'s requirements file to specify an older version of MLflow (for example, change the \'mlflow\' requirement specifier to \'mlflow==1.30.0\'). If you are making a request using the MLflow client (e.g. via `mlflow.pyfunc.spark_udf()`), upgrade your MLflow client to a version >= 2.0 in order to use the new request format. For more information about the updated MLflow Model scoring protocol in MLflow 2.0, see https://mlflow.org/docs/latest/models.html#deploy-mlflow-models.'

export type SplitFrame = { columns: string[], index?: unknown[], data: unknown[][] }

/**
 * A SageMaker endpoint running an MLflow scoring server of one generation, behind SageMaker's runtime
 * API: `predict` answers the rows. 1.x takes `application/json; format=pandas-split` with a bare split
 * frame and answers a list. 2.x refuses content-type parameters other than charset (415, as text),
 * wants exactly one of its input fields (400 in MLflow's error shape otherwise) and answers
 * `{"predictions": [...]}`. SageMaker passes container errors on as ModelError.
 */
export function mlflowEndpoint (generation: '1.x' | '2.x', predict: (frame: SplitFrame) => unknown[]): Handler {
  return (req, res) => {
    const [mime, ...params] = String(req.headers['content-type'] ?? '').split(';').map(part => part.trim())
    let body: any
    try {
      body = JSON.parse(req.body)
    } catch {
      return modelError(res, 400, JSON.stringify({ error_code: 'MALFORMED_REQUEST', message: 'Failed to parse input from JSON.' }))
    }
    if (generation === '1.x') {
      if (!Array.isArray(body?.columns)) {
        return modelError(res, 400, JSON.stringify({ error_code: 'MALFORMED_REQUEST', message: 'Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid JSON-formatted Pandas DataFrame with the `split` orient produced using the `pandas.DataFrame.to_json(..., orient=\'split\')` method.' }))
      }
      return json(res, 200, predict(body))
    }
    const unexpected = params.map(p => p.split('=')[0].trim().toLowerCase()).filter(key => key !== '' && key !== 'charset')
    if (mime !== 'application/json' || unexpected.length > 0) {
      return modelError(res, 415, `Unrecognized content type parameters: ${unexpected.join(', ')}. ${SCORING_PROTOCOL_CHANGE_INFO}`)
    }
    const fields = Object.keys(body ?? {}).filter(key => ['dataframe_split', 'dataframe_records', 'instances', 'inputs'].includes(key))
    if (fields.length !== 1 || fields.length !== Object.keys(body).filter(key => key !== 'params').length) {
      const message = 'Failed to parse input. The input must be a JSON dictionary with exactly one of the input fields ' +
        `{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}. Received dictionary with input fields: ${JSON.stringify(Object.keys(body ?? {}))}. ${SCORING_PROTOCOL_CHANGE_INFO}`
      return modelError(res, 400, JSON.stringify({ error_code: 'BAD_REQUEST', message }))
    }
    if (fields[0] !== 'dataframe_split') return modelError(res, 400, JSON.stringify({ error_code: 'BAD_REQUEST', message: 'this stand-in reads dataframe_split only' }))
    json(res, 200, { predictions: predict(body.dataframe_split) })
  }
}
