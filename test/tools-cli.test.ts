import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ratiosOf, type Measured } from '../bench/ratios.js'
import { projectRoot } from '../project.js'
import { readCommandLine } from '../scripts/cli.js'
import { projectModule } from './support/server-process.js'

const root = projectRoot()

t.test('readCommandLine: usage on --help, one line naming an unknown option, a missing value or a stray argument', async t => {
  const config = { allowPositionals: false, options: { only: { type: 'string' }, short: { type: 'boolean' } } } as const
  t.same(readCommandLine('bench', 'usage: bench\n', config, ['--only', 'x', '--help']), { exit: 0, text: 'usage: bench\n' })
  t.same(readCommandLine('bench', 'usage: bench', config, ['-h']), { exit: 0, text: 'usage: bench\n' })
  t.same(readCommandLine('bench', '', config, ['--bogus']), { exit: 2, text: 'bench: unknown option --bogus (see bench --help)\n' })
  t.same(readCommandLine('bench', '', config, ['-x']), { exit: 2, text: 'bench: unknown option -x (see bench --help)\n' })
  t.match(readCommandLine('bench', '', config, ['--only']), { exit: 2, text: /^bench: Option '--only <value>' argument missing \(see bench --help\)\n$/ })
  t.match(readCommandLine('bench', '', config, ['stray']), { exit: 2, text: /^bench: Unexpected argument 'stray' \(see bench --help\)\n$/ })
  t.same(readCommandLine('bench', '', config, ['--only', 'embedded', '--short']), { values: { only: 'embedded', short: true }, positionals: [] })
  t.match(readCommandLine('evaluate', '', { allowPositionals: true, options: {} }, ['--', '--help']), { positionals: ['--help'] }, 'after --, --help is an argument')
})

/** Runs a tool of the project as this test runs (compiled under `npm test`), with this process's flags. */
function runTool (file: string, args: string[]) {
  const result = spawnSync(process.execPath, [...process.execArgv, projectModule(file), ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

t.test('bench --help prints its usage; an unknown option is one line naming it, exit 2', async t => {
  const help = runTool('bench/run', ['--help'])
  t.equal(help.status, 0)
  t.match(help.stdout, /^usage: npm run bench -- .*--only <text>/s)
  t.match(help.stdout, /--duration <s>/)
  const bad = runTool('bench/run', ['--bogus'])
  t.equal(bad.status, 2)
  t.equal(bad.stderr, 'bench: unknown option --bogus (see bench --help)\n')
  t.equal(bad.stdout, '')
})

t.test('the other benchmarks: --help prints the usage, an unknown option is one line naming it, exit 2', async t => {
  for (const [file, tool] of [['bench/sns', 'bench:sns'], ['bench/messages', 'bench:messages'], ['bench/cost', 'bench:cost'], ['bench/model', 'bench:model'], ['bench/dashboard', 'bench:dashboard']]) {
    const help = runTool(file, ['--help'])
    t.equal(help.status, 0, `${tool} --help`)
    t.match(help.stdout, new RegExp(`^usage: npm run ${tool} -- `), `${tool}'s usage`)
    const bad = runTool(file, ['--bogus'])
    t.equal(bad.status, 2, `${tool} --bogus`)
    t.equal(bad.stderr, `${tool}: unknown option --bogus (see ${tool} --help)\n`)
  }
  const warmup = runTool('bench/run', ['--warmup', 'soon'])
  t.equal(warmup.status, 2)
  t.equal(warmup.stderr, 'bench: --warmup soon is not a number of seconds (see bench --help)\n')
})

t.test('evaluate --help prints its usage; an unknown option is one line naming it, exit 2', async t => {
  const help = runTool('scripts/evaluate', ['--help'])
  t.equal(help.status, 0)
  t.match(help.stdout, /^usage: npm run evaluate -- <labelled\.csv>/)
  t.match(help.stdout, /--write-metadata/)
  const bad = runTool('scripts/evaluate', ['flows.csv', '--urll', 'http://x'])
  t.equal(bad.status, 2)
  t.equal(bad.stderr, 'evaluate: unknown option --urll (see evaluate --help)\n')
})

const python = ['/usr/bin/python3', 'python3'].find(p => p === 'python3' || existsSync(p)) as string
t.test('training/train.py --help prints its usage (before its heavy imports); an unknown option is one line, exit 2', async t => {
  const run = (args: string[]) => spawnSync(python, [join(root, 'training', 'train.py'), ...args], { encoding: 'utf8', timeout: 60_000 })
  const help = run(['--help'])
  t.equal(help.status, 0, help.stderr)
  t.match(help.stdout, /^usage: train\.py .*--exclude-days/s)
  const bad = run(['--bogus'])
  t.equal(bad.status, 2)
  t.equal(bad.stderr, 'train.py: unknown option --bogus (see train.py --help)\n', 'named before the missing CSV')
  const prefix = run(['flows.csv', '--nam', 'x'])
  t.equal(prefix.stderr, 'train.py: unknown option --nam (see train.py --help)\n', 'no abbreviations: a typo is not taken for --name')
  const valueLikeOption = run(['--name', '-x'])
  t.equal(valueLikeOption.status, 2)
  t.equal(valueLikeOption.stderr.split('\n').length, 2, 'one line')
})

t.test('the bench reports only the ratios of scenarios that ran', async t => {
  const row = (scenario: string, rows: number, rowsPerS: number, connections = 50): Measured =>
    ({ scenario, rows_per_request: rows, connections, rows_per_s: rowsPerS, req_per_s: rowsPerS / rows })
  const limit = 'limit of this machine'
  // As `--only embedded` leaves it: the limit and the embedded scenarios, no SageMaker ones.
  const ratios = ratiosOf([
    row(limit, 1, 1000), row(limit, 100, 50000),
    row('embedded, notifications off', 1, 800), row('embedded, notifications off', 100, 40000),
    row('embedded, notifications on, row grouping', 1, 400),
  ], limit)
  t.same(ratios, {
    'embedded/limit, 1 row(s), rows/s': 0.8,
    'embedded/limit, 100 row(s), rows/s': 0.8,
    'notifications on (row grouping)/off (embedded), 1 row(s), rows/s': 0.5,
  })
  t.same(ratiosOf([row(limit, 1, 1000)], limit), {}, 'none when only the limit ran')
})
