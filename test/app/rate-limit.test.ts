import t, { type Test } from 'tap'
import type { AddressInfo } from 'node:net'
import { Value } from '@sinclair/typebox/value'
import { createApp } from '../../app.js'
import { ErrorResponse } from '../../schemas/common.js'

/**
 * Rate limits key on who the caller is, through a real listening server: the verified key when it is
 * valid, else the client's address, which X-Forwarded-For changes only when TRUST_PROXY says so.
 */

async function listening (t: Test, env: NodeJS.ProcessEnv) {
  const app = createApp({ env: { PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0', ...env } })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const get = async (headers: Record<string, string> = {}, path = '/api/model') => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers })
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() as unknown }
  }
  return { app, get }
}

t.test('key guessing from one address is throttled: 429 with Retry-After, then even the right key from it is not', async t => {
  const { get } = await listening(t, { API_KEYS: 'k1-secret,k2-secret', RATE_LIMIT_MAX: '3' })
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) statuses.push((await get({ authorization: `Bearer guess-${i}` })).status)
  t.same(statuses, [401, 401, 401, 429, 429, 429], 'every made-up key counts against the address')
  const limited = await get({ 'x-api-key': 'guess-x' })
  t.equal(limited.status, 429)
  t.ok(Number(limited.retryAfter) > 0, 'Retry-After says when')
  t.ok(Value.Check(ErrorResponse, limited.body))
  t.match(limited.body, { code: 'RATE_LIMITED', message: /more than 3 requests in 60 s: retry in/ })
  t.equal((await get({})).status, 429, 'no key from the same address: the same bucket')
  t.equal((await get({ authorization: 'Bearer k1-secret' })).status, 200, 'a valid key is its own caller, with its own bucket')
})

t.test('a valid key is one caller however it is spelled, and wherever it says it comes from', async t => {
  const { get } = await listening(t, { API_KEYS: 'k1-secret,k2-secret', RATE_LIMIT_MAX: '5' })
  const spellings: Array<Record<string, string>> = [
    { authorization: 'Bearer k1-secret', 'x-forwarded-for': '198.51.100.1' },
    { authorization: 'bearer k1-secret', 'x-forwarded-for': '198.51.100.2' },
    { authorization: 'BEARER   k1-secret  ', 'x-forwarded-for': '198.51.100.3' },
    { authorization: 'Bearer k1-secret', 'x-api-key': 'junk', 'x-forwarded-for': '198.51.100.4' },
    { 'x-api-key': 'k1-secret', 'x-forwarded-for': '198.51.100.5' },
  ]
  for (const headers of spellings) t.equal((await get(headers)).status, 200, JSON.stringify(headers))
  t.equal((await get({ authorization: 'Bearer k1-secret', 'x-forwarded-for': '198.51.100.6' })).status, 429, 'the sixth request of the key is limited')
  t.equal((await get({ authorization: 'Bearer k2-secret' })).status, 200, 'the other key is another caller')
})

t.test('without TRUST_PROXY, X-Forwarded-For changes nothing', async t => {
  const { get } = await listening(t, { RATE_LIMIT_MAX: '2' })
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await get({ 'x-forwarded-for': `203.0.113.${i}` })).status)
  t.same(statuses, [200, 200, 429], 'the peer address is the client, whatever the header says')
})

t.test('TRUST_PROXY as a hop count: the address the nearest proxy saw is the client', async t => {
  const { get } = await listening(t, { RATE_LIMIT_MAX: '2', TRUST_PROXY: '1' })
  // The balancer appends the address it saw; what the client wrote before it is not to be believed.
  t.equal((await get({ 'x-forwarded-for': 'spoofed-1, 203.0.113.7' })).status, 200)
  t.equal((await get({ 'x-forwarded-for': '10.9.9.9, 203.0.113.7' })).status, 200)
  t.equal((await get({ 'x-forwarded-for': '10.9.9.10, 203.0.113.7' })).status, 429, 'the same client, whatever it prepends')
  t.equal((await get({ 'x-forwarded-for': '203.0.113.8' })).status, 200, 'another client has its own bucket')
  t.equal((await get({})).status, 200, 'no header: the peer itself')
})

t.test('TRUST_PROXY as addresses: only the listed proxies are skipped', async t => {
  const { get } = await listening(t, { RATE_LIMIT_MAX: '1', TRUST_PROXY: '127.0.0.1/8, 10.0.0.0/8' })
  t.equal((await get({ 'x-forwarded-for': '198.51.100.9, 10.0.0.2' })).status, 200, 'skips the trusted 10.0.0.2 to the client')
  t.equal((await get({ 'x-forwarded-for': '1.2.3.4, 198.51.100.9, 10.0.0.3' })).status, 429, 'the same client behind another trusted proxy')
})

t.test('TRUST_PROXY refuses what it cannot read, naming the variable; true is not a setting', async t => {
  for (const value of ['true', '10.0.0.0/33', 'proxy.example', '1.2.3']) {
    t.throws(() => createApp({ env: { TRUST_PROXY: value } }), /TRUST_PROXY: .* is not a hop count, an address, a CIDR range/, value)
  }
  const app = createApp({ env: { TRUST_PROXY: 'loopback, ::1, fd00::/8' } })
  await app.ready()
  await app.close()
})

t.test('probes and public pages are not rate limited', async t => {
  const { get } = await listening(t, { RATE_LIMIT_MAX: '1' })
  t.equal((await get()).status, 200)
  t.equal((await get()).status, 429)
  for (let i = 0; i < 3; i++) {
    for (const path of ['/health', '/ready', '/ping']) t.equal((await get({}, path)).status, 200, path)
  }
})
