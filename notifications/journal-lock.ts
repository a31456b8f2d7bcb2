import { closeSync, futimesSync, lstatSync, openSync, readFileSync, realpathSync, unlinkSync, writeSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '../errors.js'
import { namesOpenFile } from './files.js'

/**
 * One journal folder, one owner. Two processes on one NOTIFY_DATA_DIR would each replay the other's
 * unacknowledged records (duplicates) and compact segments the other still writes to (loss after a
 * crash), so the journal takes `journal.lock` in its folder before it reads any of its files: created
 * with O_EXCL, holding {pid, hostname, started}. The owner touches its mtime every `heartbeatMs` (an
 * unref'd timer) and unlinks it on a clean close; after a crash it is left behind and taken over once
 * stale:
 * - its mtime is older than STALE_HEARTBEATS heartbeats (whatever host wrote it; the only rule for a
 *   lock that does not parse);
 * - or it names this host and a pid that is not alive (`kill(pid, 0)` → ESRCH): a process killed here;
 * - or it names this host and this very pid, and this process does not hold it: a container restarted as
 *   PID 1 on the same volume (a journal of this process on the same folder is a live owner).
 * A lock held by a live owner stops start-up with a ConfigError naming the owner and the fix.
 *
 * Accepted races: two processes finding the same stale lock at the same instant may both unlink it and
 * both create one (the second unlinks the first's new lock): both then believe they own the folder. It
 * needs two starts on one folder within the same few microseconds after a crash, which one folder per
 * process (the documented setup) never has; the heartbeat notices the lost file (`lost`) and reports it.
 * The hostname/pid rules assume a hostname is one pid namespace: containers that share a hostname but
 * not their pids (`--network host`, a fixed `hostname:` with several replicas) must not share a folder
 * either, which is already the rule.
 */

export const LOCK_FILE = 'journal.lock'
/** How often the owner touches the lock. */
export const HEARTBEAT_MS = 5_000
/** A lock not touched for this many heartbeats is stale. */
export const STALE_HEARTBEATS = 3

/** The folders (lock paths) this process holds: a same-pid lock among them is a live owner, not a restart. */
const heldHere = new Set<string>()

interface Owner { pid: number, hostname: string, started: string }

/** Start-up stops: the folder is in use by a live process. Names the folder, the owner and the fix. */
export class JournalLockedError extends ConfigError {
  constructor (dir: string, owner: Owner | undefined, ageMs: number, staleMs: number) {
    const who = owner === undefined
      ? `an unreadable ${LOCK_FILE}`
      : `pid ${owner.pid} on host ${owner.hostname} since ${owner.started}`
    super(`NOTIFY_DATA_DIR ${dir} is in use by another process (${who}, lock refreshed ${Math.round(ageMs / 1000)} s ago): ` +
      'one journal folder must have one owner, or notifications are published twice or lost. Give each process or replica ' +
      `its own NOTIFY_DATA_DIR (in containers, a volume per replica); a lock left by a crash is taken over once ${Math.round(staleMs / 1000)} s old`)
  }
}

export interface JournalLock {
  /** Why the lock was taken over from a previous owner, for a warning; undefined when it was free. */
  readonly tookOver: { reason: string, owner: Owner | undefined, path: string } | undefined
  /** Unlinks the lock (when it is still this process's) and stops the heartbeat. */
  release (): void
}

function parseOwner (text: string): Owner | undefined {
  try {
    const o = JSON.parse(text) as Partial<Owner>
    if (typeof o !== 'object' || o === null) return undefined
    // A pid of 0 or below would signal a process group: such a lock does not parse.
    if (!Number.isSafeInteger(o.pid) || (o.pid as number) <= 0 || typeof o.hostname !== 'string' || typeof o.started !== 'string') return undefined
    return { pid: o.pid as number, hostname: o.hostname, started: o.started }
  } catch {
    return undefined
  }
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    // EPERM: it exists, as another user's.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'
  }
  // A process killed a moment ago stays a zombie until its parent collects it (PID 1 in a container
  // may take a second or more), and kill(pid, 0) still finds it: dead all the same (Linux's state).
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return true
  }
}

/** Why the existing lock at `path` may be taken over, or undefined when its owner may be alive. */
function staleness (key: string, owner: Owner | undefined, ageMs: number, staleMs: number): string | undefined {
  if (ageMs > staleMs) return `not refreshed for ${Math.round(ageMs / 1000)} s`
  if (owner === undefined || owner.hostname !== hostname()) return undefined
  if (owner.pid === process.pid) return heldHere.has(key) ? undefined : 'it names this very process (a restart with the same pid)'
  return alive(owner.pid) ? undefined : `pid ${owner.pid} is not running on this host`
}

/**
 * Takes the lock of `dir` (an existing folder) or throws: a JournalLockedError when a live process
 * holds it, another error (the caller names the folder) when the file cannot be made. `onLost` hears,
 * once, that the lock file was removed or replaced while held.
 */
export function lockFolder (dir: string, opts: { heartbeatMs?: number, onLost?: (path: string) => void } = {}): JournalLock {
  const heartbeatMs = opts.heartbeatMs ?? HEARTBEAT_MS
  const staleMs = heartbeatMs * STALE_HEARTBEATS
  const path = join(dir, LOCK_FILE)
  const key = join(realpathSync(dir), LOCK_FILE)
  let tookOver: JournalLock['tookOver']
  let fd: number | undefined
  // Twice at most: a stale lock is removed once, then O_EXCL decides.
  for (let attempt = 0; fd === undefined; attempt++) {
    try {
      fd = openSync(path, 'wx', 0o644)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err
      const stat = lstatSync(path)
      if (!stat.isFile()) throw Object.assign(new Error(`${path} exists and is not a regular file: remove it`), { code: 'ENOTFILE' })
      // Small as written; a larger file is not ours and does not parse.
      const owner = stat.size <= 4096 ? parseOwner(readFileSync(path, 'utf8')) : undefined
      const ageMs = Date.now() - stat.mtimeMs
      const reason = staleness(key, owner, ageMs, staleMs)
      if (reason === undefined) throw new JournalLockedError(dir, owner, Math.max(0, ageMs), staleMs)
      // The race this accepts is in the comment at the top.
      try { unlinkSync(path) } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e }
      tookOver = { reason, owner, path }
    }
  }
  try {
    // The content only informs: O_EXCL made the lock. A disk that refuses these bytes leaves an empty
    // lock, stale only by its age, which the heartbeat keeps fresh.
    const text = JSON.stringify({ pid: process.pid, hostname: hostname(), started: new Date().toISOString() })
    writeSync(fd, text)
  } catch {}
  heldHere.add(key)
  const lockFd = fd
  let released = false
  /** Whether the file at `path` is still the one this process made (not through a symlink put there). */
  const ours = (): boolean => {
    try {
      return namesOpenFile(path, lockFd, { followLinks: false })
    } catch {
      return false
    }
  }
  const heartbeat = setInterval(() => {
    if (!ours()) {
      clearInterval(heartbeat)
      opts.onLost?.(path)
      return
    }
    try { futimesSync(lockFd, new Date(), new Date()) } catch {}
  }, heartbeatMs).unref()
  return {
    tookOver,
    release () {
      if (released) return
      released = true
      clearInterval(heartbeat)
      if (ours()) try { unlinkSync(path) } catch {}
      try { closeSync(lockFd) } catch {}
      heldHere.delete(key)
    },
  }
}
