import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { packageInfo } from '../../project.js'

/** The OpenAPI document is generated from the routes' schemas; `api-spec.yaml` is this, committed. */
export default fp(async function openapi (fastify) {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'ML-IDS API', version: packageInfo.version, description: packageInfo.description },
      // A default generated clients start from (the local default port); Swagger UI lets one edit it.
      servers: [{
        url: '{scheme}://{host}',
        description: 'A deployment of the service',
        variables: {
          scheme: { enum: ['http', 'https'], default: 'http' },
          host: { default: 'localhost:5000', description: 'host[:port] of the service (PORT defaults to 5000)' },
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
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
}, { name: 'openapi' })
