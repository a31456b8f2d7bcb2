import t from 'tap'
import { Writable } from 'node:stream'
import pino from 'pino'
import fc from 'fast-check'
import { createApp } from '../../app.js'
import { logRedaction, logSerializers, redactConfigSecrets } from '../../plugins/app/request-log.js'

/** A logger with the server's options (server.ts), writing into a string. */
function capture (serializers: pino.LoggerOptions['serializers'] = logSerializers) {
  const sink = { text: '' }
  const stream = new Writable({ write (chunk, _enc, done) { sink.text += chunk; done() } })
  return { sink, logger: pino({ level: 'info', ...logRedaction, serializers }, stream) }
}

t.test('configuration credentials never reach a log line, at any depth, bindings included', async t => {
  const { sink, logger } = capture()
  const config = { AWS_SECRET_KEY: 'secret-aws-1', AWS_ACCESS_KEY: 'AKIDSECRET2', API_KEYS: 'key-a,key-b', PORT: 3000 }
  logger.info({ config }, 'at depth 1, as pino\'s *.AWS_SECRET_KEY paths did')
  logger.info({ a: { b: [{ config }] } }, 'deeper, in an array')
  logger.info(config, 'at the top')
  logger.child({ config }).info('in bindings')
  const err = Object.assign(new Error('boom'), { AWS_SECRET_KEY: 'secret-aws-1' })
  logger.error({ err }, 'an error carrying one')
  logger.info({ note: 'AWS_SECRET_KEY is named in a message, "API_KEYS": too' }, 'named, not keyed')
  const lines = sink.text.trim().split('\n')
  t.equal(lines.length, 6)
  for (const secret of ['secret-aws-1', 'AKIDSECRET2', 'key-a']) t.notMatch(sink.text, secret)
  const parsed = lines.map(line => JSON.parse(line))
  t.same(parsed[0].config, { AWS_SECRET_KEY: '[Redacted]', AWS_ACCESS_KEY: '[Redacted]', API_KEYS: '[Redacted]', PORT: 3000 }, 'the rest of the object kept')
  t.same(parsed[1].a.b[0].config.API_KEYS, '[Redacted]')
  t.equal(parsed[2].AWS_ACCESS_KEY, '[Redacted]')
  t.equal(parsed[2].PORT, 3000)
  t.equal(parsed[3].config.AWS_SECRET_KEY, '[Redacted]')
  t.equal(parsed[4].err.message, 'boom', 'the error still serialised')
  t.equal(parsed[4].err.AWS_SECRET_KEY, '[Redacted]')
  t.equal(parsed[5].note, 'AWS_SECRET_KEY is named in a message, "API_KEYS": too', 'a name inside a string is not a key')
  t.equal(config.AWS_SECRET_KEY, 'secret-aws-1', 'the object logged is not changed')
})

t.test('a line without those keys is written as pino wrote it', async t => {
  fc.assert(fc.property(fc.jsonValue(), value => {
    const line = `${JSON.stringify({ level: 30, v: value })}\n`
    const out = redactConfigSecrets(line)
    if (!/"(?:AWS_SECRET_KEY|AWS_ACCESS_KEY|API_KEYS)":/.test(line)) return out === line
    // A key of that name anywhere: the line parses, and no such key keeps a value other than the censor.
    const keep: string[] = []
    JSON.parse(out, (key, v) => { if (['AWS_SECRET_KEY', 'AWS_ACCESS_KEY', 'API_KEYS'].includes(key)) keep.push(v); return v })
    return keep.every(v => v === '[Redacted]')
  }))
  // The line put in its place carries its own time: the two may be a millisecond apart.
  const withoutTime = (line: string) => line.replace(/"time":\d+/, '"time":0')
  t.equal(withoutTime(redactConfigSecrets('{"AWS_SECRET_KEY": not json\n')), withoutTime(redactConfigSecrets('{"AWS_SECRET_KEY": not json\n')), 'stable')
  t.notMatch(redactConfigSecrets('{"AWS_SECRET_KEY":"x" broken\n'), /"x"/, 'a line that does not parse is withheld')
})

t.test('credentials in request headers are redacted (for a logger that logs them: the request serializer leaves headers out)', async t => {
  const { sink, logger } = capture({})
  logger.info({ req: { method: 'GET', url: '/', headers: { authorization: 'Bearer tok-1', 'x-api-key': 'tok-2', cookie: 'c=tok-3', 'proxy-authorization': 'tok-4', accept: '*/*' } } }, 'headers')
  for (const secret of ['tok-1', 'tok-2', 'tok-3', 'tok-4']) t.notMatch(sink.text, secret)
  t.match(sink.text, '"accept":"*/*"')
})

t.test('a request through the app with the server\'s logger options', async t => {
  let logs = ''
  const stream = new Writable({ write (chunk, _enc, done) { logs += chunk; done() } })
  const app = createApp({ env: { API_KEYS: 'sekrit-key-123' }, logger: { level: 'info', stream, ...logRedaction, serializers: logSerializers } })
  t.teardown(() => app.close())
  await app.ready()
  app.log.info({ config: app.config }, 'the configuration')
  await app.inject({ url: '/api/model', headers: { authorization: 'Bearer sekrit-key-123' } })
  t.notMatch(logs, /sekrit-key-123/)
  t.match(logs, /"API_KEYS":"\[Redacted\]"/)
  t.match(logs, /"msg":"request"/)
})
