import { parseArgs, type ParseArgsConfig } from 'node:util'

/** What a command line asks: its values, or to print `text` and exit with `code` (help, or a mistake). */
export type CommandLine<T extends ParseArgsConfig> = ReturnType<typeof parseArgs<T>> | { exit: number, text: string }

/**
 * Reads a tool's command line (`node:util` parseArgs, strict): `--help` or `-h` asks for the usage
 * (exit 0, on stdout); an unknown option, a missing value or a stray argument is one line naming it,
 * with where to look (exit 2, on stderr). Options after `--` are arguments, not help.
 */
export function readCommandLine<const T extends ParseArgsConfig> (tool: string, usage: string, config: T, args = process.argv.slice(2)): CommandLine<T> {
  const end = args.indexOf('--')
  if ((end === -1 ? args : args.slice(0, end)).some(arg => arg === '--help' || arg === '-h')) return { exit: 0, text: usage.trimEnd() + '\n' }
  try {
    return parseArgs<T>({ ...config, args, strict: true })
  } catch (err) {
    const { code, message } = err as { code?: string, message: string }
    if (code === undefined || !code.startsWith('ERR_PARSE_ARGS_')) throw err
    // Node's messages go on with advice about `--`; their first sentence names the option or argument.
    const first = message.split(/\.\s/)[0].replace(/\.$/, '')
    const what = code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? `unknown option ${/'([^']+)'/.exec(message)?.[1] ?? first}` : first
    return { exit: 2, text: `${tool}: ${what} (see ${tool} --help)\n` }
  }
}

/** `readCommandLine` for a running tool: prints and exits when the command line says so. */
export function commandLine<const T extends ParseArgsConfig> (tool: string, usage: string, config: T): ReturnType<typeof parseArgs<T>> {
  const line = readCommandLine(tool, usage, config)
  if ('exit' in line) {
    (line.exit === 0 ? process.stdout : process.stderr).write(line.text)
    process.exit(line.exit)
  }
  return line
}
