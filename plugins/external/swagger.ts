import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { OpenAPIV3_1 as OpenApi } from 'openapi-types'
import { packageInfo } from '../../project.js'
import { errorExample } from '../../schemas/common.js'

type RequestBody = OpenApi.RequestBodyObject

/**
 * Request bodies that offer several media types become one shared `components.requestBodies` entry
 * each, with `application/json` first, referenced by the operations. Generators take the first media
 * type of a referenced body as the default (orval sends it as Content-Type; offered several inline,
 * it sends none and gets 415), the first JSON one otherwise (hey-api), and openapi-fetch types the
 * body as any of them, so CSV stays reachable.
 */
export function sharedRequestBodies (document: OpenApi.Document): OpenApi.Document {
  const shared: Record<string, RequestBody> = {}
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations ?? {}) as OpenApi.OperationObject[]) {
      const body = operation?.requestBody as RequestBody | undefined
      if (body?.content === undefined || Object.keys(body.content).length < 2) continue
      const content = Object.fromEntries(Object.entries(body.content).sort(([a], [b]) => rank(a) - rank(b)))
      const json = content['application/json']?.schema as OpenApi.ReferenceObject | undefined
      const entry: RequestBody = { ...(body.description !== undefined ? { description: body.description } : {}), required: body.required, content }
      // Named after the JSON schema the body carries (PandasSplitFrame -> FlowsPandasSplitFrame); a
      // different body with the same JSON schema gets its operation's name too.
      let name = `Flows${json?.$ref?.split('/').pop() ?? ''}`
      if (shared[name] !== undefined && JSON.stringify(shared[name]) !== JSON.stringify(entry)) name += `_${operation.operationId}`
      shared[name] = entry
      operation.requestBody = { $ref: `#/components/requestBodies/${name}` }
    }
  }
  if (Object.keys(shared).length > 0) document.components = { ...document.components, requestBodies: shared }
  return document
}

/**
 * Each error response gets the example of its status (schemas/common.ts), in place of the one
 * ErrorResponse schema example (a 400) that Swagger UI would show under every status. Added here:
 * @fastify/swagger drops the siblings of a `$ref`.
 */
export function errorExamples (document: OpenApi.Document): OpenApi.Document {
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations ?? {}) as OpenApi.OperationObject[]) {
      for (const [status, response] of Object.entries(operation?.responses ?? {}) as Array<[string, OpenApi.ResponseObject]>) {
        const media = response.content?.['application/json']
        const examples = errorExample(Number(status))
        if (media !== undefined && examples !== undefined && (media.schema as OpenApi.ReferenceObject | undefined)?.$ref === '#/components/schemas/ErrorResponse') {
          media.examples = examples
        }
      }
    }
  }
  return document
}

/** application/json, then its other spellings, then the rest (CSV), each group in its order. */
const rank = (mediaType: string) => mediaType === 'application/json' ? 0 : mediaType.startsWith('application/json') ? 1 : 2

/** The OpenAPI document is generated from the routes' schemas; `api-spec.yaml` is this, committed. */
export default fp(async function openapi (fastify) {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'ML-IDS API', version: packageInfo.version, description: packageInfo.description },
      // A default generated clients start from (the local default port); Swagger UI lets one edit it.
      // No description on the variables: orval's spec validator refuses one there (valid OpenAPI) with a warning.
      servers: [{
        url: '{scheme}://{host}',
        description: 'A deployment of the service: host is its host[:port] (PORT defaults to 5000)',
        variables: {
          scheme: { enum: ['http', 'https'], default: 'http' },
          host: { default: 'localhost:5000' },
        },
      }],
      components: {
        securitySchemes: {
          bearerKey: { type: 'http', scheme: 'bearer', description: 'One of API_KEYS, when the server sets them' },
          headerKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'One of API_KEYS, when the server sets them' },
        },
      },
      tags: [
        { name: 'predictions', description: 'Classify network flows' },
        { name: 'explanations', description: 'Why a flow was classified so: per-feature contributions' },
        { name: 'model', description: 'The model behind the predictions' },
        { name: 'notifications', description: 'Attack notifications: live stream and publishing counters' },
        { name: 'health', description: 'Liveness and readiness' },
        { name: 'dashboard', description: 'The live dashboard page' },
        { name: 'mlflow', description: 'MLflow 2.x scoring protocol and the SageMaker container contract' },
      ],
    },
    // Components are named after the schemas' $id, so generated clients get readable type names.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
    transformObject: document => 'openapiObject' in document
      ? errorExamples(sharedRequestBodies(document.openapiObject as OpenApi.Document))
      : document.swaggerObject,
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
}, { name: 'openapi' })
