/**
 * The physical limit for this payload: a bare node:http server that reads the body, JSON.parses it
 * and answers a constant array of the right length. Nothing the service does can be faster.
 */
import { createServer } from 'node:http'

const zeros = (n: number) => '[' + new Array(n).fill('0').join(',') + ']'
const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', chunk => chunks.push(chunk))
  req.on('end', () => {
    const frame = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: unknown[] }
    const body = zeros(frame.data.length)
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
})
server.keepAliveTimeout = 65_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address() as { port: number }
  console.log(JSON.stringify({ port: address.port }))
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
