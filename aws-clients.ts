import { Agent as HttpAgent } from 'node:http'
import { Agent as HttpsAgent } from 'node:https'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import type { Config } from './schemas/config.js'

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
    requestHandler: new NodeHttpHandler({
      connectionTimeout: opts.connectTimeoutMs,
      requestTimeout: opts.requestTimeoutMs,
      // Without this the handler only logs a warning when the request timeout passes.
      throwOnRequestTimeout: true,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    }),
  }
}
