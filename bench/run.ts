/**
 * The benchmark suite: drives the service over loopback with autocannon and prints, per scenario,
 * req/s, rows/s, p50/p99 latency, errors, peak RSS, InvokeEndpoint and SNS calls, and the service's
 * CPU per row (all its threads, from /proc/<pid>/stat), at a fixed offered load below saturation
 * and flat out, next to the limit of this machine (a bare node:http server) for the same payload. Results are also written as JSON to bench/results/.
 * Usage: USAGE below (`npm run bench -- --help`).
 *
 * Needs no network and no AWS account: SageMaker and SNS are loopback stand-ins (bench/stubs.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import autocannon from 'autocannon'
import { projectRoot } from '../project.js'
import { commandLine } from '../scripts/cli.js'
import { ratiosOf } from './ratios.js'
import { frameOf } from './flows.js'
import { freePort, untilReady } from './service.js'
import { pacedLoad } from './paced.js'

const USAGE = `usage: npm run bench -- [--short | --duration <s>] [--warmup <s>] [--only <text>] [--profile]

Drives the service over loopback (SageMaker and SNS are stand-ins) and prints, per scenario, req/s,
rows/s, latency, errors and peak memory, then the ratios between the scenarios that ran; writes the
results as JSON to bench/results/.

  --duration <s>   seconds per scenario (default 10)
  --short          3 s per scenario, for a quick check
  --warmup <s>     seconds of flat-out load before measuring each scenario (default 5, or half the
                   duration when longer): V8 goes on optimising the service's code for seconds
  --only <text>    only the scenarios whose name contains <text> (the limit of the machine always
                   runs); \`--only mixed\`: only the mixed scenario, 1-row requests alone and beside
                   10,000-row ones, with 0, 1, 2 and all worker threads
  --profile        also write a CPU profile of each service run (node --cpu-prof) to bench/results/profiles/
  -h, --help       this text
`
const { values } = commandLine('bench', USAGE, {
  options: { short: { type: 'boolean' }, duration: { type: 'string' }, warmup: { type: 'string' }, profile: { type: 'boolean' }, only: { type: 'string' } },
})
const duration = Number(values.duration ?? (values.short ? 3 : 10))
if (!(duration > 0)) {
  console.error(`bench: --duration ${values.duration} is not a positive number of seconds (see bench --help)`)
  process.exit(2)
}
// Long enough for V8 to have optimised most of the service's code, which a deployment running for
// hours has: in a 4 s window at 1,000 req/s of 1 row, 92 functions were optimised after a 2 s
// warm-up, 18 after 5 s (bench/README.md).
const warmup = Number(values.warmup ?? Math.max(5, Math.round(duration / 2)))
if (!(warmup >= 0)) {
  console.error(`bench: --warmup ${values.warmup} is not a number of seconds (see bench --help)`)
  process.exit(2)
}
const root = projectRoot()
const results = join(root, 'bench', 'results')
mkdirSync(results, { recursive: true })
const children = new Set<ChildProcess>()

/** A script of this suite in its own process; its first stdout line is JSON. */
async function startScript (script: string, env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [join(root, 'dist', 'bench', script)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  children.add(child)
  const [line] = await once(child.stdout!, 'data') as [Buffer]
  return { child, info: JSON.parse(line.toString().split('\n')[0]) }
}

/** The service, as `npm start` runs it, logging at info as in production (to /dev/null). */
async function startService (env: NodeJS.ProcessEnv, name: string) {
  const port = await freePort()
  const profile = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(results, 'profiles')}`, `--cpu-prof-name=${name.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`] : []
  const devNull = openSync('/dev/null', 'w')
  const dataDir = mkdtempSync(join(tmpdir(), 'ml-ids-bench-'))
  const child = spawn(process.execPath, [...profile, join(root, 'dist', 'server.js')], {
    env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', NOTIFY_DATA_DIR: dataDir, ...env },
    stdio: ['ignore', devNull, 'inherit'],
  })
  children.add(child)
  const url = `http://127.0.0.1:${port}`
  await untilReady(url, name, 200)
  return { child, url, dataDir }
}

/** Bytes of notifications left on disk (journal segments, `journal-<n>.rec`, or of the earlier `.jsonl` format) in a data folder. */
function spillBytes (dir: string): number {
  return readdirSync(dir).filter(f => /^journal-\d+\.(rec|jsonl)$/.test(f)).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0)
}

/**
 * Until the service has published every notification it was given (none queued, in flight or left on
 * disk unpublished): a flat-out phase leaves a backlog SNS's stand-in takes seconds to absorb, whose
 * publishing would otherwise be counted against the next phase's rows. Gives up after a minute.
 */
async function settled (url: string): Promise<void> {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    const { sns } = await (await fetch(`${url}/api/notifications/stats`)).json() as { sns: { queued: number, in_flight: number, oldest_unpublished_seconds: number } | null }
    if (sns === null || (sns.queued === 0 && sns.in_flight === 0 && sns.oldest_unpublished_seconds === 0)) return
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  console.error(`bench: ${url} still had notifications to publish after a minute; measuring anyway`)
}

async function stop (child: ChildProcess) {
  if (child.exitCode !== null) return
  child.kill('SIGTERM')
  await once(child, 'exit')
  children.delete(child)
}

/** CPU seconds a process has used so far, all its threads, or only its main thread (Linux). */
function cpuSeconds (pid: number, mainThread = false): number {
  try {
    const fields = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return NaN
  }
}

/** Peak resident memory of a process, in MiB (Linux). */
function peakRssMiB (pid: number): number | null {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    return kb ? Math.round(Number(kb) / 1024) : null
  } catch {
    return null
  }
}

/** Flat out (the fixed offered load is bench/paced.ts's: autocannon's rate comes in bursts). */
function load (url: string, body: string, connections: number, seconds: number) {
  return autocannon({
    url: `${url}/api/predictions`,
    method: 'POST',
    headers: { 'content-type': 'application/json; format=pandas-split' },
    body,
    connections,
    duration: seconds,
  })
}

/**
 * The fixed offered load per request size, below what every embedded scenario answers flat out on the
 * 2-core machine (1-row: 3,000-6,000 req/s; 100-row: 250-800 req/s): CPU per row measured there is what
 * a deployment pays, free of the queueing and core contention of a saturated run. Paced evenly
 * (bench/paced.ts).
 */
const FIXED_RATE: Record<number, number> = { 1: 1000, 100: 100 }

/** CPU microseconds per row of a process between two readings of cpuSeconds. */
const usPerRow = (before: number, after: number, rows: number) => Math.round((after - before) * 1e6 / Math.max(rows, 1) * 10) / 10

interface CpuPerRow {
  /** The service process, all its threads (event loop, workers, SNS sender thread, GC, libuv). */
  service_us: number
  main_thread_us: number
  /** The AWS stand-ins' process (SNS and SageMaker stand-ins), which AWS pays in a deployment. */
  stand_ins_us: number
}

interface Row {
  scenario: string
  rows_per_request: number
  connections: number
  req_per_s: number
  rows_per_s: number
  p50_ms: number
  p99_ms: number
  errors: number
  non_2xx: number
  peak_rss_mib: number | null
  invoke_calls_per_row?: number
  sns_calls_per_1000_flows?: number
  sns_messages_per_1000_flows?: number
  notifications?: { published: number, spilled: number, queued: number, held: number }
  /** Journal/spill bytes left on disk once the service has stopped (SNS answering throughout). */
  spill_bytes_after?: number
  /**
   * Cores busy during the measured load: the service (all its threads), its main thread (the event
   * loop that answers), and the AWS stand-ins, which share the machine.
   */
  cores: { service: number, main_thread: number, stand_ins: number }
  /** CPU per row flat out. */
  cpu_per_row: CpuPerRow
  /** The same at a fixed offered load (FIXED_RATE); `saturated` when the service did not keep up with it. */
  fixed_load?: { offered_req_per_s: number, req_per_s: number, p50_ms: number, p99_ms: number, cpu_per_row: CpuPerRow, saturated: boolean }
}

const stubs = await startScript('stubs.js')
const counts = async () => await (await fetch(`http://127.0.0.1:${stubs.info.control}/counts`)).json() as Record<string, number>
const SNS = {
  AWS_SNS_PREDICTIONS_TOPIC: 'arn:aws:sns:us-east-1:123456789012:ml-ids-bench',
  AWS_SNS_HOST: `http://127.0.0.1:${stubs.info.sns}`,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY: 'AKIDBENCH',
  AWS_SECRET_KEY: 'bench',
  NOTIFY: 'all',
}
const sagemaker = (delay: 0 | 20, batching: 'on' | 'off') => ({
  ...SNS,
  AWS_SAGEMAKER_ENDPOINT: 'ml-ids-bench',
  AWS_SAGEMAKER_HOST: `http://127.0.0.1:${delay === 0 ? stubs.info.sagemaker_0ms : stubs.info.sagemaker_20ms}`,
  SAGEMAKER_BATCHING: batching,
})

const scenarios: Array<{ name: string, env?: NodeJS.ProcessEnv, limit?: boolean, rows: number[], connections: number }> = [
  { name: 'limit (bare node:http + JSON.parse)', limit: true, rows: [1, 100], connections: 50 },
  { name: 'embedded, notifications off', env: { NOTIFY: 'none' }, rows: [1, 100], connections: 50 },
  { name: 'embedded, notifications on, row grouping', env: { ...SNS, NOTIFY_GROUPING: 'row' }, rows: [1, 100], connections: 50 },
  { name: 'embedded, notifications on, request grouping', env: { ...SNS, NOTIFY_GROUPING: 'request' }, rows: [1, 100], connections: 50 },
  // What the write-ahead journal costs: the same without it.
  { name: 'embedded, notifications on, request grouping, journal off', env: { ...SNS, NOTIFY_GROUPING: 'request', NOTIFY_JOURNAL: 'off' }, rows: [100], connections: 50 },
  { name: 'sagemaker 0 ms, notifications on, batching off', env: sagemaker(0, 'off'), rows: [1, 100], connections: 50 },
  { name: 'sagemaker 0 ms, notifications on, batching on', env: sagemaker(0, 'on'), rows: [1, 100], connections: 50 },
  { name: 'sagemaker 20 ms, notifications on, batching off', env: sagemaker(20, 'off'), rows: [1, 100], connections: 50 },
  { name: 'sagemaker 20 ms, notifications on, batching on', env: sagemaker(20, 'on'), rows: [1, 100], connections: 50 },
  { name: 'sagemaker 20 ms, notifications on, batching off', env: sagemaker(20, 'off'), rows: [1], connections: 256 },
  { name: 'sagemaker 20 ms, notifications on, batching on', env: sagemaker(20, 'on'), rows: [1], connections: 256 },
]

const table: Row[] = []
try {
  for (const scenario of scenarios) {
    if (values.only !== undefined && !scenario.limit && !scenario.name.includes(values.only)) continue
    for (const rows of scenario.rows) {
      const label = `${scenario.name}, ${rows} row${rows > 1 ? 's' : ''}, ${scenario.connections} connections`
      const target = scenario.limit ? await startScript('limit.js') : await startService(scenario.env ?? {}, label)
      const url = 'url' in target ? target.url : `http://127.0.0.1:${target.info.port}`
      const body = JSON.stringify(frameOf(rows))
      if (warmup > 0) await load(url, body, scenario.connections, warmup)
      if (!scenario.limit) await settled(url)
      const cpuNow = () => [cpuSeconds(target.child.pid!), cpuSeconds(target.child.pid!, true), cpuSeconds(stubs.child.pid!)]
      const perRow = (before: number[], after: number[], flows: number): CpuPerRow =>
        ({ service_us: usPerRow(before[0], after[0], flows), main_thread_us: usPerRow(before[1], after[1], flows), stand_ins_us: usPerRow(before[2], after[2], flows) })
      // First at the fixed offered load, then flat out.
      const rate = FIXED_RATE[rows]
      let fixedLoad: Row['fixed_load']
      if (rate !== undefined && scenario.connections === 50) {
        const cpuAtStart = cpuNow()
        const fixed = await pacedLoad(`${url}/api/predictions`, body, { connections: scenario.connections, rate, seconds: duration, contentType: 'application/json; format=pandas-split' })
        const cpuAtEnd = cpuNow()
        const answered = Math.round(fixed.ok / duration)
        fixedLoad = { offered_req_per_s: rate, req_per_s: answered, p50_ms: fixed.p50_ms, p99_ms: fixed.p99_ms, cpu_per_row: perRow(cpuAtStart, cpuAtEnd, fixed.ok * rows), saturated: answered < rate * 0.95 }
        if (!scenario.limit) await settled(url)
      }
      const before = await counts()
      const cpuBefore = cpuNow()
      const result = await load(url, body, scenario.connections, duration)
      const cpuAfter = cpuNow()
      const [service, mainThread, standIns] = cpuAfter.map((after, k) => Math.round((after - cpuBefore[k]) / duration * 100) / 100)
      const cores = { service, main_thread: mainThread, stand_ins: standIns }
      // Let the notifications of the last requests go out before counting SNS calls.
      if (!scenario.limit) await new Promise(resolve => setTimeout(resolve, 500))
      const after = await counts()
      const notifications = scenario.env?.AWS_SNS_PREDICTIONS_TOPIC ? (await (await fetch(`${url}/api/notifications/stats`)).json()).sns : undefined
      const rss = peakRssMiB(target.child.pid!)
      await stop(target.child)
      const spilledBytes = 'dataDir' in target && notifications ? spillBytes(target.dataDir) : undefined
      const ok = result['2xx']
      const flows = ok * rows
      const invokes = (after.invoke_0ms - before.invoke_0ms) + (after.invoke_20ms - before.invoke_20ms)
      const row: Row = {
        scenario: scenario.name,
        rows_per_request: rows,
        connections: scenario.connections,
        req_per_s: Math.round(ok / duration),
        rows_per_s: Math.round(flows / duration),
        p50_ms: result.latency.p50,
        p99_ms: result.latency.p99,
        errors: result.errors + result.timeouts,
        non_2xx: result.non2xx,
        peak_rss_mib: rss,
        cores,
        cpu_per_row: perRow(cpuBefore, cpuAfter, flows),
        ...(fixedLoad === undefined ? {} : { fixed_load: fixedLoad }),
        ...(scenario.env?.AWS_SAGEMAKER_ENDPOINT ? { invoke_calls_per_row: Math.round(invokes / Math.max(flows, 1) * 1000) / 1000 } : {}),
        // Per 1,000 flows SNS received: what is spilled is published later, in batches of the same size.
        ...(notifications
          ? {
              sns_calls_per_1000_flows: Math.round((after.sns_calls - before.sns_calls) / Math.max(after.sns_rows - before.sns_rows, 1) * 1000 * 10) / 10,
              sns_messages_per_1000_flows: Math.round((after.sns_messages - before.sns_messages) / Math.max(after.sns_rows - before.sns_rows, 1) * 1000 * 10) / 10,
              notifications: { published: notifications.published, spilled: notifications.spilled, queued: notifications.queued, held: notifications.held },
              spill_bytes_after: spilledBytes,
            }
          : {}),
      }
      table.push(row)
      console.log(`${label}: ${row.req_per_s} req/s, ${row.rows_per_s} rows/s, p50 ${row.p50_ms} ms, p99 ${row.p99_ms} ms, errors ${row.errors}, non-2xx ${row.non_2xx}, peak RSS ${row.peak_rss_mib} MiB, cores: service ${cores.service} (main thread ${cores.main_thread}), stand-ins ${cores.stand_ins}, ` +
        `service CPU per row ${row.cpu_per_row.service_us} us (main thread ${row.cpu_per_row.main_thread_us})` +
        (fixedLoad ? `; at ${fixedLoad.offered_req_per_s} req/s offered: ${fixedLoad.req_per_s} req/s${fixedLoad.saturated ? ' (saturated)' : ''}, p99 ${fixedLoad.p99_ms} ms, service CPU per row ${fixedLoad.cpu_per_row.service_us} us (main thread ${fixedLoad.cpu_per_row.main_thread_us}), stand-ins ${fixedLoad.cpu_per_row.stand_ins_us} us` : '') +
        (row.invoke_calls_per_row !== undefined ? `, ${row.invoke_calls_per_row} InvokeEndpoint calls/row` : '') +
        (row.notifications ? `, ${row.sns_messages_per_1000_flows} SNS messages and ${row.sns_calls_per_1000_flows} calls/1000 flows, notifications published ${row.notifications.published} spilled ${row.notifications.spilled}, ${row.spill_bytes_after} bytes on disk after` : ''))
    }
  }
} finally {
  for (const child of children) child.kill('SIGTERM')
}

/**
 * The mixed scenario: 10 connections of 1-row requests, alone, then while two connections send
 * 10,000-row requests (about 5 MB each), in the same service process. Targets: p99 of the small
 * requests beside the big ones at most max(3x alone, 50 ms), and their throughput at least half.
 */
interface MixedRow {
  workers: string
  alone: { req_per_s: number, p99_ms: number }
  beside_big: { req_per_s: number, p99_ms: number, big_rows_per_s: number, big_p99_ms: number, errors: number }
  p99_target_ms: number
  p99_met: boolean
  throughput_met: boolean
}
const mixed: MixedRow[] = []
if (values.only === undefined || 'mixed'.includes(values.only)) {
  const small = JSON.stringify(frameOf(1))
  const big = JSON.stringify(frameOf(10000))
  const all = availableParallelism()
  const settings = [...new Set(['0', '1', '2', String(all)])]
  try {
    for (const workers of settings) {
      const label = `mixed, WORKERS=${workers}${workers === String(all) ? ' (all)' : ''}`
      const { child, url } = await startService({ NOTIFY: 'none', WORKERS: workers }, label)
      if (warmup > 0) await Promise.all([load(url, small, 10, warmup), load(url, big, 2, warmup)])
      const alone = await load(url, small, 10, duration)
      const [beside, bigs] = await Promise.all([load(url, small, 10, duration), load(url, big, 2, duration)])
      await stop(child)
      const target = Math.max(3 * alone.latency.p99, 50)
      const row: MixedRow = {
        workers: label.slice('mixed, WORKERS='.length),
        alone: { req_per_s: Math.round(alone['2xx'] / duration), p99_ms: alone.latency.p99 },
        beside_big: {
          req_per_s: Math.round(beside['2xx'] / duration),
          p99_ms: beside.latency.p99,
          big_rows_per_s: Math.round(bigs['2xx'] * 10000 / duration),
          big_p99_ms: bigs.latency.p99,
          errors: alone.errors + alone.non2xx + beside.errors + beside.non2xx + bigs.errors + bigs.non2xx,
        },
        p99_target_ms: target,
        p99_met: beside.latency.p99 <= target,
        throughput_met: beside['2xx'] >= alone['2xx'] / 2,
      }
      mixed.push(row)
      console.log(`${label}: 1-row alone ${row.alone.req_per_s} req/s p99 ${row.alone.p99_ms} ms; beside 10,000-row requests ` +
        `${row.beside_big.req_per_s} req/s p99 ${row.beside_big.p99_ms} ms (target ${target} ms: ${row.p99_met ? 'met' : 'not met'}; ` +
        `throughput ${row.throughput_met ? 'met' : 'not met'}); big batches ${row.beside_big.big_rows_per_s} rows/s, p99 ${row.beside_big.big_p99_ms} ms; errors ${row.beside_big.errors}`)
    }
  } finally {
    for (const child of children) child.kill('SIGTERM')
  }
}

const ratios = ratiosOf(table, scenarios[0].name)

const report = {
  machine: { cpus: `${cpus().length} x ${cpus()[0]?.model}`, memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version },
  duration_s: duration,
  results: table,
  mixed,
  ratios,
}
const file = join(results, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
writeFileSync(file, JSON.stringify(report, null, 2) + '\n')
writeFileSync(join(results, 'latest.json'), JSON.stringify(report, null, 2) + '\n')
if (Object.keys(ratios).length > 0) console.log('\nratios:')
for (const [name, value] of Object.entries(ratios)) console.log(`  ${name}: ${value}`)
console.log(`\nwrote ${file}`)
