import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto'
import { SignatureV4 } from '@smithy/signature-v4'
import { HttpRequest } from '@smithy/core/protocols'
import type { RecordedRequest } from './loopback.js'

const bytes = (d: string | ArrayBuffer | ArrayBufferView) => typeof d === 'string' ? d : d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength)

/** node:crypto as the signer's hash (an HMAC when given a key). */
class Sha256 {
  private readonly hash: Hash | Hmac
  constructor (key?: string | ArrayBuffer | ArrayBufferView) { this.hash = key === undefined ? createHash('sha256') : createHmac('sha256', bytes(key)) }
  update (data: string | ArrayBuffer | ArrayBufferView) { this.hash.update(bytes(data)) }
  async digest () { return new Uint8Array(this.hash.digest()) }
}

/**
 * Recomputes an SNS request's SigV4 signature (region eu-west-1) from what the server received, with the
 * secret of the access key it names; false for a key `secretOf` does not know.
 */
export async function signatureMatches (request: Pick<RecordedRequest, 'method' | 'url' | 'headers' | 'body'>, secretOf: (accessKeyId: string) => string | undefined): Promise<boolean> {
  const auth = String(request.headers.authorization)
  const accessKeyId = /Credential=([^/]+)\//.exec(auth)![1]
  const secretAccessKey = secretOf(accessKeyId)
  if (secretAccessKey === undefined) return false
  const signed = /SignedHeaders=([^,]+)/.exec(auth)![1].split(';')
  const headers: Record<string, string> = {}
  for (const name of signed) headers[name] = String(request.headers[name])
  const date = String(request.headers['x-amz-date'])
  const signer = new SignatureV4({ service: 'sns', region: 'eu-west-1', credentials: { accessKeyId, secretAccessKey, sessionToken: headers['x-amz-security-token'] }, sha256: Sha256 })
  const [host, port] = headers.host.split(':')
  const resigned = await signer.sign(new HttpRequest({ method: request.method, protocol: 'http:', hostname: host, port: Number(port), path: request.url, headers, body: request.body }), {
    signingDate: new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`),
  })
  return resigned.headers.authorization === auth
}
