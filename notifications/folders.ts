import { existsSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'

/**
 * mkdir -p, one level at a time: Node 20's `mkdirSync(path, { recursive: true })` never returns for a
 * path under a folder that refuses new entries with ENOENT (`/proc/nope`: found by a probe).
 */
export function makeFolder (path: string): void {
  if (existsSync(path)) return
  const parent = dirname(path)
  if (parent !== path) makeFolder(parent)
  try {
    mkdirSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
}
