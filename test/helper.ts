import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createApp } from '../app.js'
import { defaultModelDir } from '../classifier/model.js'

/**
 * The app as the server builds it, on the given environment (nothing from process.env), closed at
 * teardown. SNS calls run inline unless a test asks for NOTIFY_SENDER=thread: the calls and the wire are
 * the same (test/app/sender-thread.test.ts runs both), and a thread per app would cost every test its start.
 */
export async function build (t: Test, env: NodeJS.ProcessEnv = {}) {
  const app = createApp({ env: { NOTIFY_SENDER: 'inline', ...env } })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

export const PANDAS_SPLIT = 'application/json; format=pandas-split'

export const modelDir = defaultModelDir()
const json = (file: string) => JSON.parse(readFileSync(join(modelDir, file), 'utf8'))

/** Per-feature medians of the training flows of each class (no training row is committed). */
export const examples: Record<'benign' | 'attack', Record<string, number | null>> = json('examples.json')
/** Synthetic rows with XGBoost's own probabilities, written by training/train.py. */
export const parity: { columns: string[], data: Array<Array<number | string | null>>, probabilities: number[] } = json('parity.json')
export const metadata = json('metadata.json')
/** The unfamiliar-flow detector's card and trees, written by training/novelty.py. */
export const novelty = json('novelty.json')
/** Synthetic rows with scikit-learn's own isolation-forest scores, written by training/novelty.py. */
export const noveltyParity: { columns: string[], data: Array<Array<number | null>>, scores: number[] } = json('novelty-parity.json')

/** A frame as `DataFrame.to_json(orient="split")` writes it, from flows given as objects. */
export function splitFrame (flows: Array<Record<string, unknown>>, opts: { index?: boolean, extra?: Record<string, unknown> } = {}) {
  const withExtra = flows.map(flow => ({ ...flow, ...opts.extra }))
  const columns = Object.keys(withExtra[0] ?? examples.benign)
  return {
    columns,
    ...(opts.index === false ? {} : { index: withExtra.map((_, i) => i) }),
    data: withExtra.map(flow => columns.map(c => (flow[c] ?? null) as number | string | null)),
  }
}

/** POSTs a frame (or a raw string) to /api/predictions; `contentType: null` sends none. */
export function post (app: FastifyInstance, body: unknown, contentType: string | null = PANDAS_SPLIT) {
  return postTo(app, '/api/predictions', body, contentType)
}

/** POSTs a body (a value, or raw text) to a route of an app, as JSON unless said. */
export function postTo (app: FastifyInstance, url: string, body: unknown, contentType: string | null = 'application/json') {
  return app.inject({
    method: 'POST',
    url,
    headers: contentType === null ? {} : { 'content-type': contentType },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  })
}
