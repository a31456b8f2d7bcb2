/**
 * The container's entry point (exec-form ENTRYPOINT), so that `docker run <image> serve`, as SageMaker
 * starts bring-your-own-container endpoints, works: the argument replaces CMD and arrives here.
 *
 *   (none) | start   the service as configured (PORT, default 5000)
 *   serve            SageMaker's contract: port 8080 (or SAGEMAKER_BIND_TO_PORT), all interfaces, and
 *                    the model under /opt/ml/model when SageMaker mounted one there and MODEL_DIR is unset
 *   healthcheck      exits 0 when the service answers /health (Docker's HEALTHCHECK)
 *
 * The server runs in this same process, so SIGTERM reaches it and it drains before exiting.
 */
import { existsSync, realpathSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const SAGEMAKER_MODEL_DIR = '/opt/ml/model'

/** The environment `serve` runs the service with. */
export function serveEnvironment (env: NodeJS.ProcessEnv, modelDir = SAGEMAKER_MODEL_DIR, exists: (path: string) => boolean = existsSync): NodeJS.ProcessEnv {
  const served: NodeJS.ProcessEnv = { ...env, PORT: env.SAGEMAKER_BIND_TO_PORT || '8080', HOST: '0.0.0.0' }
  if (!env.MODEL_DIR && exists(join(modelDir, 'metadata.json'))) served.MODEL_DIR = modelDir
  return served
}

async function healthcheck (): Promise<number> {
  // `serve` listens on 8080 without changing the container's PORT: try both.
  for (const port of new Set([process.env.PORT || '5000', process.env.SAGEMAKER_BIND_TO_PORT || '8080'])) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) })).ok) return 0
    } catch {}
  }
  return 1
}

/**
 * Whether node was asked to run this file: through a symlink or a path with a space too (the module's
 * URL is the real path, escaped), not only as `node dist/entrypoint.js`.
 */
function isProgram (): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (isProgram()) {
  const [command = 'start', ...rest] = process.argv.slice(2)
  if (command === 'serve' || command === 'start') {
    if (rest.length > 0) {
      console.error(`unexpected arguments after ${command}: ${rest.join(' ')}`)
      process.exit(2)
    }
    if (command === 'serve') Object.assign(process.env, serveEnvironment(process.env))
    await import('./server.js')
  } else if (command === 'healthcheck') {
    process.exit(await healthcheck())
  } else {
    console.error(`unknown command ${JSON.stringify(command)}: use serve (SageMaker), start (the default) or healthcheck`)
    process.exit(2)
  }
}
