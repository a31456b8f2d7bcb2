import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import { Transform, type Readable } from 'node:stream'
import { NodeHttpHandler, type NodeHttpHandlerOptions } from '@smithy/node-http-handler'
import type { Config } from './schemas/config.js'
import { UpstreamError } from './errors.js'

/**
 * AWS client wiring shared by every AWS client of the service (SageMaker Runtime, SNS): region,
 * endpoint override, credentials and the HTTP handler with keep-alive agents and timeouts. Each
 * caller passes the result to its SDK client's constructor, with its own retry settings.
 */

/** `runtime.sagemaker.eu-west-1.amazonaws.com` gets https://; a full URL (a local emulator) is kept. */
export function endpointUrl (host: string | undefined): string | undefined {
  if (host === undefined) return undefined
  return /^[a-z]+:\/\//i.test(host) ? host : `https://${host}`
}

export interface AwsClientOptions {
  region: string | undefined
  /** `*_HOST`: a host name or a full URL instead of the service's regional endpoint. */
  host: string | undefined
  maxSockets: number
  connectTimeoutMs: number
  requestTimeoutMs: number
  /** Largest answer read into memory; past it the call fails (502) and the rest is never read. */
  maxAnswerBytes: number
  /** The service, as a refusal names it. */
  service: string
}

/**
 * The SDK's HTTP handler, with a cap on what an answer may hold: the SDK reads answers whole into
 * memory, so an endpoint answering 50 MB would cost 50 MB (times the calls in flight). A declared
 * length over the cap fails at once; a chunked answer fails as the cap is passed; either way the
 * connection is destroyed, the rest unread, and the call fails with UpstreamError (502).
 */
export class CappedHttpHandler extends NodeHttpHandler {
  constructor (options: NodeHttpHandlerOptions, private readonly maxAnswerBytes: number, private readonly service: string) {
    super(options)
  }

  override async handle (...args: Parameters<NodeHttpHandler['handle']>): ReturnType<NodeHttpHandler['handle']> {
    const answer = await super.handle(...args)
    const body = answer.response.body as Readable | undefined
    if (body === undefined || typeof body.pipe !== 'function') return answer
    const max = this.maxAnswerBytes
    const refusal = () => new UpstreamError(`${this.service} answered more than ${max} bytes`)
    const declared = Number(answer.response.headers['content-length'])
    if (Number.isFinite(declared) && declared > max) {
      body.destroy()
      throw refusal()
    }
    let seen = 0
    const capped = new Transform({
      transform (chunk: Buffer, _encoding, done) {
        seen += chunk.length
        if (seen > max) {
          body.destroy()
          return done(refusal())
        }
        done(null, chunk)
      },
    })
    body.on('error', err => capped.destroy(err))
    answer.response.body = body.pipe(capped)
    return answer
  }
}

/** Constructor options common to the SDK v3 clients. */
export function awsClientConfig (config: Pick<Config, 'AWS_ACCESS_KEY' | 'AWS_SECRET_KEY'>, opts: AwsClientOptions) {
  const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets }
  return {
    region: opts.region,
    endpoint: endpointUrl(opts.host),
    // Absent keys leave the SDK's default chain (environment, profile, ECS task role, instance role).
    credentials: config.AWS_ACCESS_KEY !== undefined && config.AWS_SECRET_KEY !== undefined
      ? { accessKeyId: config.AWS_ACCESS_KEY, secretAccessKey: config.AWS_SECRET_KEY }
      : undefined,
    requestHandler: new CappedHttpHandler({
      connectionTimeout: opts.connectTimeoutMs,
      requestTimeout: opts.requestTimeoutMs,
      // Without this the handler only logs a warning when the request timeout passes.
      throwOnRequestTimeout: true,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    }, opts.maxAnswerBytes, opts.service),
  }
}
