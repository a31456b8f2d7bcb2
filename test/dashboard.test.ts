import t, { type Test } from 'tap'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createApp } from '../app.js'
import { projectRoot } from '../project.js'
import { build, examples, noveltyParity, PANDAS_SPLIT } from './helper.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const flows = readFileSync(join(projectRoot(), 'examples', 'flows.json'), 'utf8')
const flowsCsv = readFileSync(join(projectRoot(), 'examples', 'flows.csv'), 'utf8')
const artifacts = join(projectRoot(), 'test', 'artifacts')

t.test('the page and its assets: served locally, typed, cached by content hash, under the strict CSP', async t => {
  const app = await build(t)
  const page = await app.inject('/dashboard')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html; charset=utf-8/)
  t.equal(page.headers['cache-control'], 'no-cache')
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /default-src 'self'/)
  t.match(csp, /script-src 'self'(;|$)/, 'scripts from this origin only, no inline script')
  t.notMatch(page.body, /<script>|<script [^>]*>[^<]/, 'no inline script')
  const urls = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map(m => m[1]).filter(u => !u.startsWith('data:'))
  t.equal(urls.length, 4, 'uPlot and the page\'s own script and stylesheet')
  for (const url of urls) {
    t.match(url, /^\/dashboard\/assets\/[\w]+\.[0-9a-f]{12}\.(js|css)$/, `${url}: same origin, content-addressed`)
    const asset = await app.inject(url)
    t.equal(asset.statusCode, 200, url)
    t.match(asset.headers['content-type'], url.endsWith('.js') ? /^text\/javascript/ : /^text\/css/, url)
    t.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable', url)
  }
  const uplot = urls.find(u => u.includes('uplot') && u.endsWith('.js'))!
  t.match((await app.inject(uplot)).body, /uPlot/, 'uPlot\'s browser build, from the npm package')
  t.equal((await app.inject('/dashboard/assets/dashboard.000000000000.js')).statusCode, 404)
  t.equal((await app.inject('/dashboard/assets/..%2Fpackage.json')).statusCode, 404)
})

t.test('the page needs no key, the API behind it does', async t => {
  const app = await build(t, { API_KEYS: 'k1' })
  t.equal((await app.inject('/dashboard')).statusCode, 200)
  t.equal((await app.inject('/api/notifications?include=all')).statusCode, 401)
  t.equal((await app.inject('/api/model')).statusCode, 401)
})

/** The service on a real port, and headless Chromium on the dashboard, watching what the page does. */
async function openDashboard (t: Test, env: Record<string, string> = {}) {
  // No load shedding on event-loop delay: on a busy test machine a starved service would answer the page
  // 503 and its retries back off past the test's waits; shedding is tested in test/app/hardening.test.ts.
  const app = createApp({ env: { PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0', ...env } })
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  })
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  // Slow on a loaded machine, never stuck: a stuck wait fails with what the page did (below).
  page.setDefaultTimeout(60_000)
  const problems: string[] = []
  const foreign: string[] = []
  const requests: string[] = []
  page.on('requestfinished', async request => { requests.push(`${request.method()} ${request.url()} ${(await request.response())?.status()}`) })
  page.on('requestfailed', request => { requests.push(`${request.method()} ${request.url()} failed: ${request.failure()?.errorText}`) })
  t.teardown(async () => {
    if (!t.passing()) t.comment(`connection: ${await page.locator('#connection').innerText().catch(() => '?')}; requests: ${requests.join(', ')}; problems: ${problems.join(', ')}`)
    await browser.close()
  })
  page.on('console', message => { if (message.type() === 'error') problems.push(`console: ${message.text()}`) })
  page.on('pageerror', error => problems.push(`page error: ${error.message}`))
  page.on('request', request => {
    const target = new URL(request.url())
    if (target.protocol !== 'data:' && target.origin !== url) foreign.push(request.url())
  })
  await page.goto(`${url}/dashboard`)
  return { app, url, page, problems, foreign }
}

/** POSTs examples/flows.json (a benign and an attack flow); the x-request-id of the answer. */
async function postFlows (url: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT, ...headers }, body: flows })
  if (!res.ok) throw new Error(`predictions: ${res.status}`)
  t.same(await res.json(), [0, 1])
  return res.headers.get('x-request-id')!
}

const text = (page: import('playwright-core').Page, selector: string) => page.locator(selector).innerText()

t.test('in Chromium: live counts, the chart, the latest attacks with scores and top features', { skip: !existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}: install it (apt-get install chromium) or set CHROMIUM_PATH` }, async t => {
  const { url, page, problems, foreign } = await openDashboard(t)
  await page.waitForSelector('#connection[data-state="live"]')
  await page.waitForFunction(() => document.getElementById('model')!.textContent!.includes('cic-ids2018-xgb'))
  t.match(await text(page, '#model'), /cic-ids2018-xgb .*\(local, threshold 0\.4433\)/)
  await page.waitForSelector('#health[data-state="ok"]')

  const ids = []
  for (let i = 0; i < 3; i++) ids.push(await postFlows(url))
  await page.waitForFunction(() => document.getElementById('total-flows')!.textContent === '6')
  t.equal(await text(page, '#total-attacks'), '3')
  t.equal(await text(page, '#attack-share'), '50.0 %')
  await page.waitForFunction(() => document.querySelectorAll('#attacks tbody tr').length === 3)
  const shownIds = await page.locator('#attacks tbody td.id').allInnerTexts()
  t.same(shownIds, [...ids].reverse(), 'one row per attack, newest first, with the request id')
  t.equal(await text(page, '#attacks tbody tr:first-child td.flow'), '→ port 22 · TCP · 2018-02-14 10:31:02', 'snake_case identity; the capture\'s DD/MM time as YYYY-MM-DD')
  // Scores and top contributions come from /api/explanations for the rows shown.
  await page.waitForFunction(() => [...document.querySelectorAll('#attacks tbody td.score')].every(td => /^\d\.\d{3}$/.test(td.textContent!)))
  const score = Number(await text(page, '#attacks tbody tr:first-child td.score'))
  t.ok(score >= 0.4433 && score <= 1, `an attack's score (${score})`)
  t.equal(await page.locator('#attacks tbody tr:first-child td.features .feature').count(), 3, 'three top features')
  t.notOk(await page.locator('#no-attacks').isVisible())
  // Once the second of the posts is over, it is a point of the chart and the rate of the last second.
  await page.waitForFunction(() => document.getElementById('rate-now')!.textContent !== '0')
  t.ok(await page.locator('#chart canvas').count() > 0, 'the chart is drawn')

  mkdirSync(artifacts, { recursive: true })
  await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true })

  // Volume: 4,000 flows in 20 concurrent requests are all counted, and the table stays capped.
  const frame = JSON.parse(flows)
  const big = JSON.stringify({ columns: frame.columns, data: Array.from({ length: 200 }, (_, i) => frame.data[i % 2]) })
  await Promise.all(Array.from({ length: 20 }, () => fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: big })))
  await page.waitForFunction(() => document.getElementById('total-flows')!.textContent === '4,006')
  t.equal(await text(page, '#total-attacks'), '2,003')
  t.equal(await page.locator('#attacks tbody tr').count(), 50, 'the table keeps the 50 newest attacks')
  t.same(problems, [], 'no console errors')
  t.same(foreign, [], 'no request to any other host')
})

t.test('in Chromium, with one message per row (NOTIFY_GROUPING=row): the same counts', { skip: !existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}` }, async t => {
  const { url, page, problems } = await openDashboard(t, { NOTIFY_GROUPING: 'row' })
  await page.waitForSelector('#connection[data-state="live"]')
  const frame = JSON.parse(flows)
  const body = JSON.stringify({ columns: frame.columns, data: Array.from({ length: 30 }, (_, i) => frame.data[i % 2]) })
  await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body })
  await page.waitForFunction(() => document.getElementById('total-flows')!.textContent === '30')
  t.equal(await text(page, '#total-attacks'), '15')
  await page.waitForFunction(() => document.querySelectorAll('#attacks tbody tr').length === 15)
  t.same(problems, [], 'no console errors')
})

t.test('in Chromium, with API_KEYS: the page asks for a key, refuses a wrong one, then works', { skip: !existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}` }, async t => {
  const { url, page, problems, foreign } = await openDashboard(t, { API_KEYS: 'right-key' })
  await page.waitForSelector('#key-form:not([hidden])')
  t.equal(await text(page, '#connection'), 'API key needed')
  await page.fill('#key-input', 'wrong-key')
  await page.click('#key-form button')
  await page.waitForFunction(() => document.getElementById('key-error')!.textContent === 'unknown API key')
  t.ok(await page.locator('#key-form').isVisible(), 'asked again')
  await page.fill('#key-input', 'right-key')
  await page.click('#key-form button')
  await page.waitForSelector('#connection[data-state="live"]')
  t.notOk(await page.locator('#key-form').isVisible())
  await postFlows(url, { authorization: 'Bearer right-key' })
  await page.waitForFunction(() => document.getElementById('total-attacks')!.textContent === '1')
  t.equal(await text(page, '#total-flows'), '2')
  await page.waitForFunction(() => /^\d\.\d{3}$/.test(document.querySelector('#attacks tbody td.score')?.textContent ?? ''))
  mkdirSync(artifacts, { recursive: true })
  await page.screenshot({ path: join(artifacts, 'dashboard-key.png'), fullPage: true })
  // The two refused attempts are the browser's log of the 401s, which the page answers by asking.
  t.same(problems.filter(p => !/status of 401/.test(p)), [], 'no other console errors')
  t.same(foreign, [])
})

t.test('in Chromium, the README\'s CSV and JSON examples: flow identity under either spelling, scores as rows arrive, a 24 h axis, flows per alert', { skip: !existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}` }, async t => {
  const { url, page, problems, foreign } = await openDashboard(t)
  await page.waitForSelector('#connection[data-state="live"]')
  await page.waitForFunction(() => document.getElementById('model')!.textContent!.includes('cic-ids2018-xgb'))
  // Every row, as it appears, shows a score or says it is coming: never an unexplained blank.
  await page.evaluate(() => {
    const seen: string[] = []
    Object.assign(window, { scoreStates: seen })
    new MutationObserver(() => {
      for (const td of document.querySelectorAll('#attacks tbody td.score')) seen.push(td.textContent!)
    }).observe(document.querySelector('#attacks tbody')!, { childList: true, subtree: true, characterData: true })
  })

  // Explanations held back at first: the row says they are coming.
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  await page.route('**/api/explanations*', async route => { await held; await route.continue() })

  // The CSV example, as CICFlowMeter writes it: `Src IP`, `Src Port`, `Dst IP`, `Dst Port`, `Protocol`, `Timestamp`.
  const csv = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: flowsCsv })
  t.same(await csv.json(), [0, 1])
  await page.waitForFunction(() => document.querySelectorAll('#attacks tbody tr').length === 1)
  mkdirSync(artifacts, { recursive: true })
  await page.waitForFunction(() => document.querySelector('#attacks tbody td.score')?.textContent === 'explaining…')
  t.equal(await text(page, '#attacks tbody tr:first-child td.features'), 'explaining…')
  await page.screenshot({ path: join(artifacts, 'dashboard-arriving.png') })
  release()
  await page.waitForFunction(() => /^\d\.\d{3}$/.test(document.querySelector('#attacks tbody td.score')?.textContent ?? ''))
  t.equal(await text(page, '#attacks tbody tr:first-child td.flow'), '198.51.100.7:40512 → 172.31.69.25:22 · TCP · 2018-02-14 10:31:02')
  // The JSON example (snake_case; no addresses).
  const requestId = await postFlows(url)
  await page.waitForFunction(() => document.querySelectorAll('#attacks tbody tr').length === 2)
  t.equal(await text(page, '#attacks tbody tr:first-child td.flow'), '→ port 22 · TCP · 2018-02-14 10:31:02')
  t.equal(await text(page, '#attacks tbody tr:first-child td.id'), requestId)
  t.match(await text(page, '#attacks tbody tr:first-child td.time'), /^(\d{4}-\d{2}-\d{2} )?([01]\d|2[0-3]):[0-5]\d:[0-5]\d$/, 'seen at, local, 24 h, ISO-like (the date when not today)')

  // Flows per alert: one request of 40 flows, 20 of them attacks, is one alert of 20 attack flows.
  const frame = JSON.parse(flows)
  const forty = JSON.stringify({ columns: frame.columns, data: Array.from({ length: 40 }, (_, i) => frame.data[i % 2]) })
  await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: forty })
  await page.waitForFunction(() => document.getElementById('total-attacks')!.textContent === '22')
  t.equal(await text(page, '#total-alerts'), '3', 'three alerts: the CSV, the JSON and the 40-flow request')
  t.equal(await text(page, '#attacks tbody tr:first-child td.alert-flows'), '20')
  t.equal(await text(page, '#attacks tbody tr:last-child td.alert-flows'), '1')
  t.equal(await page.locator('#attacks tbody tr.continued').count(), 19, 'the rows of the 20-flow alert read as one block')
  t.same(await page.locator('#attacks thead th').allInnerTexts(), ['Seen', 'Alert (request id)', 'Flows in alert', 'Flow', 'Score', 'Top features (SHAP, log-odds)'])

  await page.waitForFunction(() => [...document.querySelectorAll('#attacks tbody td.score')].every(td => /^\d\.\d{3}$/.test(td.textContent!)))
  const states = await page.evaluate(() => (window as unknown as { scoreStates: string[] }).scoreStates)
  t.ok(states.length > 0)
  t.same(states.filter(state => !/^(\d\.\d{3}|explaining…)$/.test(state)), [], 'a score or "explaining…", nothing else')
  t.equal(await page.locator('#attacks tbody tr td.features .feature').count(), 22 * 3, 'three top features on every row')

  // The time axis: HH:MM:SS, 24 h, local, no more labels than fit at 80 px each.
  await page.waitForFunction(() => (document.getElementById('chart')!.dataset.timeLabels ?? '') !== '')
  const labels = (await page.locator('#chart').getAttribute('data-time-labels'))!.split(' ')
  for (const label of labels) t.match(label, /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$/, label)
  const width = await page.locator('#chart canvas').first().evaluate(canvas => canvas.clientWidth)
  t.ok(labels.length * 80 <= width, `${labels.length} labels in ${width} px`)

  mkdirSync(artifacts, { recursive: true })
  await page.screenshot({ path: join(artifacts, 'dashboard-examples.png'), fullPage: true })
  t.same(problems, [], 'no console errors')
  t.same(foreign, [])
})

t.test('in Chromium, with NOTIFY=unfamiliar: unfamiliar benign flows are counted and listed apart from attacks', { skip: !existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}` }, async t => {
  const { url, page, problems } = await openDashboard(t, { NOTIFY: 'unfamiliar' })
  await page.waitForSelector('#connection[data-state="live"]')
  await page.waitForFunction(() => document.getElementById('notify-note')!.textContent!.includes('NOTIFY=unfamiliar'))
  const { columns, data } = noveltyParity
  const post = (path: string, rows: unknown[][]) =>
    fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ columns, data: rows }) })
  // From the parity rows (random flows, all unfamiliar): one predicted benign, one attack; and the median benign training flow (familiar).
  const scored = await (await post('/api/scores', data)).json()
  t.ok(scored.novelty.unfamiliar.every(Boolean))
  const benign = data[scored.predictions.indexOf(0)]
  const attack = data[scored.predictions.indexOf(1)]
  await page.waitForFunction(() => document.getElementById('total-unfamiliar')!.textContent !== '0')
  const before = { unfamiliar: Number((await text(page, '#total-unfamiliar')).replace(/,/g, '')), attacks: Number((await text(page, '#total-attacks')).replace(/,/g, '')) }
  const res = await post('/api/predictions', [columns.map(c => examples.benign[c] ?? null), benign, attack])
  t.same(await res.json(), [0, 0, 1])
  const id = res.headers.get('x-request-id')!
  await page.waitForFunction(n => document.getElementById('total-unfamiliar')!.textContent === String(n), before.unfamiliar + 1)
  t.equal(Number(await text(page, '#total-attacks')), before.attacks + 1, 'the attack counted as an attack, the familiar benign flow not at all')
  t.equal(await text(page, '#unfamiliar tbody tr:first-child td.id'), id, 'the unfamiliar flow listed apart, with its request id')
  t.equal(await text(page, '#attacks tbody tr:first-child td.id'), id, 'the attack in the attack table')
  t.notOk(await page.locator('#no-unfamiliar').isVisible())
  t.equal(await page.locator('#unfamiliar tbody tr').count(), Math.min(50, before.unfamiliar + 1))
  t.same(problems, [], 'no console errors')
})
