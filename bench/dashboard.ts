/**
 * The dashboard under load: headless Chromium on /dashboard while clients post 100-row frames as fast
 * as the service answers. Prints flows/s sent, whether the page counted every one, and the page's
 * main-thread long tasks (over 50 ms: what a user would feel as a freeze).
 *
 *   npm run bench:dashboard -- [--seconds 10] [--clients 4]
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { createApp } from '../app.js'
import { projectRoot } from '../project.js'
import { commandLine } from '../scripts/cli.js'

const USAGE = `usage: npm run bench:dashboard -- [--seconds <s>] [--clients <n>]

The dashboard in headless Chromium while clients post 100-row frames as fast as the service answers.

  --seconds <s>    how long (default 10)
  --clients <n>    posting clients (default 4)
  -h, --help       this text
`
const { values } = commandLine('bench:dashboard', USAGE, { options: { seconds: { type: 'string', default: '10' }, clients: { type: 'string', default: '4' } } })
const seconds = Number(values.seconds)

const example = JSON.parse(readFileSync(join(projectRoot(), 'examples', 'flows.json'), 'utf8'))
const body = JSON.stringify({ columns: example.columns, data: Array.from({ length: 100 }, (_, i) => example.data[i % 2]) })

const app = createApp({ env: {} })
const url = await app.listen({ port: 0, host: '127.0.0.1' })
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'],
})
const page = await browser.newPage()
await page.goto(`${url}/dashboard`)
await page.waitForSelector('#connection[data-state="live"]')
await page.evaluate(() => {
  const w = window as unknown as { longTasks: number[] }
  w.longTasks = []
  new PerformanceObserver(list => { for (const e of list.getEntries()) w.longTasks.push(e.duration) }).observe({ entryTypes: ['longtask'] })
})

let sent = 0
const started = performance.now()
await Promise.all(Array.from({ length: Number(values.clients) }, async () => {
  while (performance.now() - started < seconds * 1000) {
    const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': 'application/json; format=pandas-split' }, body })
    await res.arrayBuffer()
    if (res.ok) sent += 100
  }
}))
const elapsed = (performance.now() - started) / 1000
const counted = async () => Number((await page.locator('#total-flows').innerText()).replace(/,/g, ''))
// Give the page up to 10 s to drain what is in flight.
const deadline = Date.now() + 10_000
while (await counted() < sent && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
const longTasks = await page.evaluate(() => (window as unknown as { longTasks: number[] }).longTasks)
console.log(JSON.stringify({
  seconds: Math.round(elapsed * 10) / 10,
  flows_sent: sent,
  flows_per_s: Math.round(sent / elapsed),
  flows_counted_by_page: await counted(),
  connection: await page.locator('#connection').innerText(),
  long_task_observer: await page.evaluate(() => PerformanceObserver.supportedEntryTypes.includes('longtask')),
  long_tasks_over_50ms: longTasks.length,
  longest_task_ms: Math.round(Math.max(0, ...longTasks)),
  stream: (await app.inject('/api/notifications/stats')).json().stream,
}, null, 2))
await browser.close()
await app.close()
