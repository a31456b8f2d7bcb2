import { existsSync, fstatSync, lstatSync, mkdirSync, statSync } from 'node:fs'
import { dirname } from 'node:path'

// File-system helpers of the notifications' files (the journal, its lock, the JSON-lines files).

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

/**
 * Whether `path` still names the file open as `fd`: false once it was moved, replaced or deleted.
 * A symlink at `path` is followed only with `followLinks`. Other errors (the folder unreadable) are
 * thrown: what they mean is the caller's to say.
 */
export function namesOpenFile (path: string, fd: number, opts: { followLinks: boolean }): boolean {
  const there = opts.followLinks ? statSync(path, { throwIfNoEntry: false }) : lstatSync(path, { throwIfNoEntry: false })
  if (there === undefined) return false
  const open = fstatSync(fd)
  return there.ino === open.ino && there.dev === open.dev
}
