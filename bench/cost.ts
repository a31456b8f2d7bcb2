/**
 * Server CPU time per request, the service against the limit server (bench/limit.ts), for one body
 * size: the user+system time the server process spent (from /proc, Linux) over a fixed number of
 * requests. Unlike req/s it hardly moves when other processes share the machine, so it shows what a
 * change to the per-request path is worth.
 *
 *   npm run bench:cost                                      # 1-row requests, 3 rounds of 20,000
 *   npm run bench:cost -- --rows 100 --rounds 5 --requests 5000
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import autocannon from 'autocannon'
import { projectRoot } from '../project.js'
import { commandLine } from '../scripts/cli.js'
import { frameOf } from './flows.js'

const USAGE = `usage: npm run bench:cost -- [--rows <n>] [--rounds <n>] [--requests <n>]

Server CPU time per request, the service against a bare node:http server, from /proc.

  --rows <n>       rows per request (default 1)
  --rounds <n>     rounds per server (default 3)
  --requests <n>   requests per round (default 20000)
  -h, --help       this text
`
const { values } = commandLine('bench:cost', USAGE, { options: { rows: { type: 'string' }, rounds: { type: 'string' }, requests: { type: 'string' } } })
const rows = Number(values.rows ?? 1)
const rounds = Number(values.rounds ?? 3)
const requests = Number(values.requests ?? 20000)
const root = projectRoot()
const body = JSON.stringify(frameOf(rows))

/** CPU milliseconds a process has used (utime + stime, in clock ticks of 10 ms). */
function cpuMs (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

async function start (script: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(root, 'dist', ...script.split('/'))], {
    env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', NOTIFY: 'none', NOTIFY_DATA_DIR: mkdtempSync(join(tmpdir(), 'ml-ids-cost-')) },
    stdio: ['ignore', script === 'bench/limit.js' ? 'pipe' : 'ignore', 'inherit'],
  })
  // The limit server prints its port when listening; the service answers /health.
  if (script === 'bench/limit.js') await once(child.stdout!, 'data')
  else {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break
      } catch {}
      if (i > 200) throw new Error('the service did not start')
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  return child
}

const send = (port: number, amount: number) => autocannon({
  url: `http://127.0.0.1:${port}/api/predictions`,
  method: 'POST',
  headers: { 'content-type': 'application/json; format=pandas-split' },
  body,
  connections: 10,
  amount,
})

/** Microseconds of server CPU per request. */
async function measure (child: ChildProcess, port: number): Promise<number> {
  const before = cpuMs(child.pid!)
  const result = await send(port, requests)
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx answers, ${result.errors} errors`)
  return Math.round((cpuMs(child.pid!) - before) * 1000 / requests)
}

const [servicePort, limitPort] = [5611, 5612]
const service = await start('server.js', servicePort)
const limit = await start('bench/limit.js', limitPort)
try {
  await send(servicePort, 5000)
  await send(limitPort, 5000)
  const out: Array<{ service_us: number, limit_us: number, ratio: number }> = []
  for (let i = 0; i < rounds; i++) {
    const serviceUs = await measure(service, servicePort)
    const limitUs = await measure(limit, limitPort)
    out.push({ service_us: serviceUs, limit_us: limitUs, ratio: Math.round(limitUs / serviceUs * 100) / 100 })
    console.log(`${rows} row(s): service ${serviceUs} us of CPU per request, limit ${limitUs} us: ${out[i].ratio}x`)
  }
} finally {
  service.kill('SIGTERM')
  limit.kill('SIGTERM')
}
