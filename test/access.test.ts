import t, { type Test } from 'tap'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { createApp } from '../app.js'

/**
 * Access control by route, tried as an attacker would: every route of the app as registered (walked
 * with an onRoute hook, so a route added later is covered without touching this test), under every
 * spelling a router or a proxy might read as that route, without a key and with a wrong one. A
 * protected route may answer only 401, 404, 405 or 429. Through inject and through a real listening
 * server with raw sockets (fetch and inject normalise some targets before they leave).
 */

const KEYS = 'k1-secret,k2-secret'
const env = { API_KEYS: KEYS, PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0' }
const ALLOWED = new Set([401, 404, 405, 429])

interface Route { method: string, url: string }

async function buildWalked (t: Test) {
  const app = createApp({ env })
  const routes: Route[] = []
  app.addHook('onRoute', route => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url })
  })
  // Which route answered: a spelling that normalises to a public route (`/invocations/..` is `/`) may be
  // answered by it; only a protected route's answer must be a refusal.
  app.addHook('onSend', async (request, reply) => { reply.header('x-matched-route', request.routeOptions.url ?? '') })
  t.teardown(() => app.close())
  await app.ready()
  return { app, routes }
}

// Every /api route, and /invocations, which classifies and announces as /api/predictions does.
const isProtected = (url: string) => url === '/api' || url.startsWith('/api/') || url === '/invocations'
/** A concrete path for a registered one: parameters and wildcards filled in. */
const concrete = (url: string) => url.replace(/:[^/]+/g, 'x').replace(/\*/g, 'x')

const hex = (char: string, upper: boolean) => {
  const code = char.charCodeAt(0).toString(16)
  return `%${upper ? code.toUpperCase() : code}`
}

/** Every spelling of a path that might reach its route: the issue's, and their relatives. */
function spellings (path: string): string[] {
  const out = new Set<string>([path])
  for (let i = 0; i < path.length; i++) {
    if (!/[a-z]/i.test(path[i])) continue
    for (const upper of [false, true]) out.add(path.slice(0, i) + hex(path[i], upper) + path.slice(i + 1))
  }
  out.add(path.replace(/[^/]/g, c => hex(c, false)))
  out.add(path.replace(/[^/]/g, c => hex(c, true)))
  const rest = path.replace(/^\/api/, '')
  for (const variant of [
    `/${path}`, `//${path}`, path.replace('/api/', '/api//'), `${path}/`, `${path}//`,
    `/.${path}`, `/./${path.slice(1)}`, path.replace('/api/', '/api/./'), `/x/..${path}`, path.replace('/api/', '/api/x/../'),
    `${path}/.`, `${path}/..`, `/%2e${path}`, `/%2E%2E${path}`, path.replace('/api/', '/api/%2e/'), path.replace('/api/', '/api%2f'),
    path.replace('/api/', '/api%2F'), `${path}%2f`, `${path}%00`, `${path};`, `${path};x=1`,
    path.toUpperCase(), `/API${rest}`, `/Api${rest}`, `/aPi${rest}`, path.replace(/\/(\w)/g, (_, c: string) => `/${c.toUpperCase()}`),
    `${path}?`, `${path}?a=1`, `${path}?include=all`, `${path}?api_key=k1-secret`, `${path}?x-api-key=k1-secret`, `${path}?/../x`,
    `${path}#`, `${path}#frag`, `${path}#/../x`, `${path}?a=1#frag`,
    `/%61pi${rest}?include=all`, `/ap%69${rest}/`,
  ]) out.add(variant)
  return [...out]
}

/** Request lines of absolute form, which only a raw socket sends as written. */
const absolute = (path: string, port: number) => [
  `http://127.0.0.1${path}`, `http://127.0.0.1:${port}${path}`, `HTTP://LOCALHOST${path}`, `http://evil.example${path}`,
  `http://127.0.0.1/%61pi${path.replace(/^\/api/, '')}`, `http://k1-secret@127.0.0.1${path}`,
]

const KEY_HEADERS: Array<[string, Record<string, string>]> = [
  ['no key', {}],
  ['a wrong key', { authorization: 'Bearer k3-guess' }],
  ['a wrong x-api-key', { 'x-api-key': 'k3-guess' }],
  ['an empty bearer', { authorization: 'Bearer ' }],
  ['another scheme', { authorization: 'Basic azEtc2VjcmV0Og==' }],
]

/** The methods to try on a route: its own, HEAD, OPTIONS, and the other of GET and POST. */
const methodsFor = (method: string) => [...new Set([method, 'HEAD', 'OPTIONS', method === 'GET' ? 'POST' : 'GET'])]

/** One request written by hand on its own connection; the status code of the answer (0: none). */
function rawStatus (port: number, line: string, headers: Record<string, string>): Promise<{ status: number, text: string }> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    const done = () => {
      socket.destroy()
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), text })
    }
    socket.setTimeout(5000, done)
    socket.on('connect', () => {
      const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')
      socket.write(`${line} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${head}\r\n`)
    })
    socket.on('data', chunk => {
      text += chunk
      if (/^HTTP\/1\.[01] \d{3}/.test(text) && text.includes('\r\n\r\n')) done()
    })
    socket.on('error', done)
    socket.on('close', done)
  })
}

const tally = (answers: Map<string, number>) =>
  [...answers.values()].reduce<Record<number, number>>((counts, status) => ({ ...counts, [status]: (counts[status] ?? 0) + 1 }), {})

async function inBatches<T> (items: T[], size: number, run: (item: T) => Promise<void>) {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(run))
}

t.test('the routes as registered: every /api route is protected, the others are the known public ones', async t => {
  const { app, routes } = await buildWalked(t)
  const api = routes.filter(r => isProtected(r.url))
  t.ok(api.length >= 4, `${api.length} /api routes found`)
  for (const { method, url } of api) {
    if (method === 'HEAD' || url.endsWith('/')) continue
    const path = concrete(url)
    t.equal((await app.inject({ method: method as 'GET', url: path })).statusCode, 401, `${method} ${url} refuses a request without a key`)
    if (method === 'GET' && !url.startsWith('/api/notifications')) {
      t.equal((await app.inject({ method: 'GET', url: path, headers: { authorization: 'Bearer k2-secret' } })).statusCode, 200, `${method} ${url} answers a valid key`)
    }
  }
  const publicPaths = new Set(routes.filter(r => !isProtected(r.url)).map(r => r.url.split('/')[1]))
  t.same([...publicPaths].sort(), ['', 'dashboard', 'docs', 'health', 'metrics', 'ping', 'ready', 'version'], 'nothing else is public')
})

t.test('unmatched paths stay 404, with or without a key', async t => {
  const { app } = await buildWalked(t)
  for (const url of ['/api', '/api/', '/api/nothing', '/api/model/x', '/apis/model', '/%61pi/nothing']) {
    for (const [label, headers] of [['no key', {}], ['a wrong key', { 'x-api-key': 'nope' }], ['a valid key', { 'x-api-key': 'k1-secret' }]] as const) {
      const res = await app.inject({ url, headers })
      t.equal(res.statusCode, 404, `${url} with ${label}`)
      t.equal(res.json().code, 'NOT_FOUND')
    }
  }
})

t.test('every spelling of every protected route, through inject: 401/404/405/429 only', async t => {
  const { app, routes } = await buildWalked(t)
  const cases: Array<{ method: string, target: string, headers: Record<string, string>, label: string }> = []
  for (const route of routes.filter(r => isProtected(r.url))) {
    for (const target of spellings(concrete(route.url))) {
      for (const method of methodsFor(route.method)) {
        for (const [label, headers] of KEY_HEADERS) cases.push({ method, target, headers, label })
      }
    }
  }
  const answered = new Map<string, number>()
  const failures: string[] = []
  await inBatches(cases, 32, async ({ method, target, headers, label }) => {
    let timer: NodeJS.Timeout | undefined
    // An event stream that opened would never end: give up on it after a while, as a failure.
    const status = await Promise.race([
      app.inject({ method: method as 'GET', url: target, headers }).then(res => ({ status: res.statusCode, route: String(res.headers['x-matched-route'] ?? '') }), () => -1 as const),
      new Promise<{ status: number, route: string }>(resolve => { timer = setTimeout(resolve, 5000, { status: 0, route: '' }) }),
    ]).finally(() => clearTimeout(timer))
    if (status === -1) return // inject refuses some targets itself: they never reach a route
    answered.set(`${method} ${target} ${label}`, status.status)
    const publicRoute = status.route !== '' && !isProtected(status.route)
    if (!ALLOWED.has(status.status) && !publicRoute) failures.push(`${method} ${target} with ${label}: ${status.status || 'no answer'}`)
  })
  t.same(failures, [], `${answered.size} requests, none reached a protected route`)
  t.comment(`statuses: ${JSON.stringify(tally(answered))}`)
  t.equal(answered.get('GET /%61pi/model no key'), 401, 'a percent-encoded letter reaches the route, and is refused')
  t.equal(answered.get('POST /%61pi/predictions a wrong key'), 401)
  t.equal(answered.get('GET /%61pi/notifications?include=all no key'), 401)
  t.equal(answered.get('HEAD /ap%69/model a wrong x-api-key'), 401)
})

t.test('every spelling of every protected route, through a real server and raw sockets: 401/404/405/429 only', async t => {
  const { app, routes } = await buildWalked(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const cases: Array<{ line: string, headers: Record<string, string>, label: string }> = []
  for (const route of routes.filter(r => isProtected(r.url))) {
    const path = concrete(route.url)
    for (const target of [...spellings(path), ...absolute(path, port)]) {
      for (const method of methodsFor(route.method)) {
        for (const [label, headers] of KEY_HEADERS) cases.push({ line: `${method} ${target}`, headers, label })
      }
    }
  }
  const failures: string[] = []
  const answered = new Map<string, number>()
  await inBatches(cases, 32, async ({ line, headers, label }) => {
    const { status, text } = await rawStatus(port, line, headers)
    answered.set(`${line} ${label}`, status)
    // The HTTP parser's own refusal of a target it cannot read (no route is reached) is a 400 too.
    const parserRefusal = status === 400 && /"message":"Client Error"/.test(text)
    const route = /\r\nx-matched-route: ([^\r]*)/i.exec(text)?.[1] ?? ''
    const publicRoute = route !== '' && !isProtected(route)
    if (!ALLOWED.has(status) && !parserRefusal && !publicRoute) failures.push(`${line} with ${label}: ${status || 'no answer'}`)
  })
  t.same(failures, [], `${cases.length} requests, none reached a protected route`)
  t.comment(`statuses: ${JSON.stringify(tally(answered))}`)
  t.equal(answered.get('GET /%61pi/model no key'), 401)
  t.equal(answered.get('GET http://127.0.0.1/api/model no key'), 401, 'an absolute-form target reaches the route, and is refused')
  t.equal(answered.get('POST /%61pi/predictions a wrong key'), 401)
  t.equal(answered.get('GET /%61pi/notifications/stats no key'), 401)
  const valid = await rawStatus(port, 'GET http://127.0.0.1/%61pi/model', { 'x-api-key': 'k1-secret' })
  t.equal(valid.status, 200, 'the same spelling with a valid key is served: the spellings do reach the routes')
})
