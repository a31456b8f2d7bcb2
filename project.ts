import { existsSync, readFileSync } from 'node:fs'
import { dirname, isAbsolute, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The project root (where package.json and models/ are), whether running from source or from dist/. */
export function projectRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url))
    dir = parent
  }
  return dir
}

/**
 * A path the configuration names (MODEL_DIR, NOTIFY_DATA_DIR, NOTIFY_LOG_FILE): a relative one is
 * relative to the project folder (`/app` in the image), wherever the process was started from; an
 * unset one stays unset.
 */
export function projectPath (path: string): string
export function projectPath (path: string | undefined): string | undefined
export function projectPath (path: string | undefined): string | undefined {
  return path === undefined || isAbsolute(path) ? path : join(projectRoot(), path)
}

export const packageInfo = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { name: string, version: string, description: string }
