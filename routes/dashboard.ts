import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { projectRoot } from '../project.js'

interface Asset {
  readonly body: Buffer
  readonly type: string
}

/**
 * The live dashboard: one HTML page and its assets, all read once at start and served by this
 * service (the page loads nothing from elsewhere, so the strict Content-Security-Policy stands).
 * Assets are addressed by a hash of their content and cached for a year; the page is revalidated.
 * The page itself holds no data: it reads the API with the key its user enters.
 */
const routes: FastifyPluginAsyncTypebox = async function (fastify) {
  const dir = join(projectRoot(), 'dashboard')
  // uPlot, an npm dependency: its browser build and stylesheet.
  const uplotDir = dirname(createRequire(import.meta.url).resolve('uplot'))
  const sources: Record<string, [path: string, type: string]> = {
    'uplot.js': [join(uplotDir, 'uPlot.iife.min.js'), 'text/javascript; charset=utf-8'],
    'uplot.css': [join(uplotDir, 'uPlot.min.css'), 'text/css; charset=utf-8'],
    'dashboard.js': [join(dir, 'dashboard.js'), 'text/javascript; charset=utf-8'],
    'dashboard.css': [join(dir, 'dashboard.css'), 'text/css; charset=utf-8'],
  }
  const assets = new Map<string, Asset>()
  let page = readFileSync(join(dir, 'index.html'), 'utf8')
  for (const [name, [path, type]] of Object.entries(sources)) {
    const body = readFileSync(path)
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 12)
    const file = name.replace(/\.(\w+)$/, `.${hash}.$1`)
    assets.set(file, { body, type })
    page = page.replace(`{{${name}}}`, `/dashboard/assets/${file}`)
  }

  fastify.get('/dashboard', {
    schema: {
      operationId: 'getDashboard',
      tags: ['dashboard'],
      summary: 'Live dashboard (HTML)',
      description: 'Flows and attacks per second, totals, the latest attacks with their score and top features, ' +
        'the model and the service\'s health, live from `GET /api/notifications`. With API_KEYS set, the page asks for a key.',
      produces: ['text/html'],
      response: { 200: Type.String({ description: 'The page' }) },
    },
  }, async function (_request, reply) {
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page)
  })

  fastify.get('/dashboard/assets/:file', {
    schema: {
      hide: true,
      params: Type.Object({ file: Type.String({ maxLength: 64 }) }),
    },
  }, async function (request, reply) {
    const asset = assets.get(request.params.file)
    if (asset === undefined) return reply.callNotFound()
    return reply.type(asset.type).header('cache-control', 'public, max-age=31536000, immutable').send(asset.body)
  })
}

export default routes
