import autocannon from 'autocannon'
const root = process.argv[2]
const { createApp } = await import(`${root}/app.ts`)
const { examples, splitFrame } = await import(`${root}/test/helper.ts`)
const app = createApp({ env: { NOTIFY: 'none', PRESSURE_MAX_EVENT_LOOP_DELAY_MS: '0' } })
await app.listen({ port: 0, host: '127.0.0.1' })
const url = `http://127.0.0.1:${app.server.address().port}/api/predictions`
const body = JSON.stringify(splitFrame(Array(100).fill(examples.attack)))
const run = (d: number) => autocannon({ url, method: 'POST', body, headers: { 'content-type': 'application/json' }, connections: 10, duration: d })
await run(2)
const r = await run(5)
console.log(root, 'req/s', r.requests.average, 'p99', r.latency.p99, 'non2xx', r.non2xx)
await app.close()
