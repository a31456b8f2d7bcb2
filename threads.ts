import { Worker, type WorkerOptions } from 'node:worker_threads'

// Flags that preload code into a thread, with or without `=value`.
const PRELOADS = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader'])

/** Node flags less their preloads (`--import x`, `--import=x`, `-r x`, ...), everything else kept in order. */
export function withoutPreloads (args: readonly string[]): string[] {
  const kept: string[] = []
  for (let i = 0; i < args.length; i++) {
    const flag = args[i].split('=', 1)[0]
    if (!PRELOADS.has(flag)) kept.push(args[i])
    else if (!args[i].includes('=')) i++ // its value is the next argument
  }
  return kept
}

/** NODE_OPTIONS as Node splits it: on spaces, except inside double quotes (with backslash escapes). */
export function splitNodeOptions (options: string): string[] {
  return [...options.matchAll(/"((?:\\.|[^"\\])*)"|(\S+)/g)].map(([, quoted, bare]) => quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : bare)
}

const quoted = (arg: string) => /[\s"\\]/.test(arg) ? `"${arg.replace(/["\\]/g, '\\$&')}"` : arg

/**
 * The flags and environment of this service's worker threads: the process's, less what preloads code
 * (`--import`, `--require`, `--loader`, in the arguments or in NODE_OPTIONS, which a thread re-reads).
 * A preload is the main thread's business (an APM agent, a test runner's loader hooks); in a thread
 * that parses and classifies, or sends to SNS, it would only run again, and loader hooks put every
 * module the thread loads through another thread: 0.35 s more per thread start under tap's (measured).
 */
export function threadOptions (): Pick<WorkerOptions, 'execArgv' | 'env'> {
  const env = { ...process.env }
  if (env.NODE_OPTIONS !== undefined) env.NODE_OPTIONS = withoutPreloads(splitNodeOptions(env.NODE_OPTIONS)).map(quoted).join(' ')
  return { execArgv: threadFlags ?? withoutPreloads(process.execArgv), env }
}

// The flags threads start with, once a thread refused some of the process's (startThread).
let threadFlags: string[] | undefined

/**
 * The flags of an ERR_WORKER_INVALID_EXEC_ARGV message ("…invalid execArgv flags: --a=1, --b") that are
 * among `given`, as given.
 */
export function refusedFlags (message: string, given: readonly string[]): string[] {
  const listed = message.slice(message.indexOf(': ') + 2).split(', ')
  return given.filter(flag => listed.includes(flag))
}

/**
 * A Worker on threadOptions. A thread refuses the process's V8 and process-wide flags
 * (`node --max-old-space-size=2048 dist/server.js`, `--stack-size`, `--title`: Worker throws
 * ERR_WORKER_INVALID_EXEC_ARGV); they already apply to the whole process, so they are left out, and
 * every later thread starts without them. Should the refusal name none of them, threads start with
 * no flags of the command line (NODE_OPTIONS still reaches them).
 */
export function startThread (file: URL, options: Omit<WorkerOptions, 'execArgv' | 'env'>): Worker {
  for (;;) {
    const base = threadOptions()
    try {
      return new Worker(file, { ...base, ...options })
    } catch (err) {
      const given = base.execArgv ?? []
      if ((err as NodeJS.ErrnoException).code !== 'ERR_WORKER_INVALID_EXEC_ARGV' || given.length === 0) throw err
      const refused = refusedFlags((err as Error).message, given)
      threadFlags = refused.length > 0 ? given.filter(flag => !refused.includes(flag)) : []
    }
  }
}
