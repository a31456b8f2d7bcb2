import t from 'tap'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { serveEnvironment, SAGEMAKER_MODEL_DIR } from '../entrypoint.js'
import { projectRoot } from '../project.js'
import { examples, splitFrame } from './helper.js'
import { closedPort, projectModule, startServer } from './support/server-process.js'

t.test('serve: port 8080 on all interfaces, the model SageMaker mounted under /opt/ml/model', async t => {
  const none = () => false
  t.match(serveEnvironment({ PORT: '5000', HOST: '127.0.0.1' }, SAGEMAKER_MODEL_DIR, none), { PORT: '8080', HOST: '0.0.0.0' })
  t.notOk('MODEL_DIR' in serveEnvironment({}, SAGEMAKER_MODEL_DIR, none), 'no model mounted: the bundled one')
  const mounted = (path: string) => path === join(SAGEMAKER_MODEL_DIR, 'metadata.json')
  t.equal(serveEnvironment({}, SAGEMAKER_MODEL_DIR, mounted).MODEL_DIR, '/opt/ml/model')
  t.equal(serveEnvironment({ MODEL_DIR: '/models/x' }, SAGEMAKER_MODEL_DIR, mounted).MODEL_DIR, '/models/x', 'an explicit MODEL_DIR wins')
  t.equal(serveEnvironment({ SAGEMAKER_BIND_TO_PORT: '9090' }, SAGEMAKER_MODEL_DIR, none).PORT, '9090', 'SageMaker\'s port for multi-container endpoints')
})

t.test('the Dockerfile runs the entry point in exec form, so `docker run <image> serve` reaches it', async t => {
  const dockerfile = readFileSync(join(projectRoot(), 'Dockerfile'), 'utf8')
  t.match(dockerfile, /^ENTRYPOINT \["node", "dist\/entrypoint\.js"\]$/m)
  t.match(dockerfile, /^CMD \["start"\]$/m)
  t.match(dockerfile, /^USER \$\{RUN_AS\}$/m)
  t.match(dockerfile, /^ARG RUN_AS=node$/m, 'non-root by default')
})

t.test('`entrypoint serve` listens, answers /ping at once and /invocations, and drains on SIGTERM', async t => {
  // SAGEMAKER_BIND_TO_PORT=0: the test machine's 8080 may be taken; the mapping is tested above.
  const server = startServer({ SAGEMAKER_BIND_TO_PORT: '0' }, { script: 'entrypoint', args: ['serve'] })
  t.teardown(() => { server.child.kill('SIGKILL') })
  const url = await server.listening
  const started = performance.now()
  const ping = await fetch(`${url}/ping`)
  t.equal(ping.status, 200)
  t.ok(performance.now() - started < 2000, '/ping within SageMaker\'s 2 s')
  const invocation = await fetch(`${url}/invocations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ dataframe_split: splitFrame([examples.benign, examples.attack]) }),
  })
  t.equal(invocation.status, 200)
  t.same(await invocation.json(), { predictions: [0, 1] })
  const csv = await fetch(`${url}/invocations`, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: readFileSync(join(projectRoot(), 'examples', 'flows.csv')) })
  t.same(await csv.json(), { predictions: [0, 1] })
  const port = new URL(url).port
  // PORT is tried first: a port nothing answers on, so only the serve port can make this pass.
  const healthy = startServer({ PORT: await closedPort(), SAGEMAKER_BIND_TO_PORT: port }, { script: 'entrypoint', args: ['healthcheck'] })
  t.equal((await once(healthy.child, 'exit'))[0], 0, 'healthcheck finds the service on the serve port')
  server.child.kill('SIGTERM')
  const [code] = await once(server.child, 'exit')
  t.equal(code, 0)
  const unhealthy = startServer({ PORT: await closedPort(), SAGEMAKER_BIND_TO_PORT: await closedPort() }, { script: 'entrypoint', args: ['healthcheck'] })
  t.equal((await once(unhealthy.child, 'exit'))[0], 1, 'and fails when nothing answers')
})

t.test('an unknown command exits 2 naming the commands', async t => {
  const server = startServer({}, { script: 'entrypoint', args: ['train'] })
  const [code] = await once(server.child, 'exit')
  t.equal(code, 2)
  t.match(server.output(), /unknown command "train": use serve/)
})

t.test('run through a symlink or a path with a space, the entry point still runs its command', async t => {
  const folder = mkdtempSync(join(tmpdir(), 'ml-ids-entry-'))
  const entry = projectModule('entrypoint')
  for (const name of ['linked', 'with space']) {
    symlinkSync(dirname(entry), join(folder, name))
    const child = spawn(process.execPath, [...process.execArgv, join(folder, name, basename(entry)), 'bogus'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stderr.on('data', chunk => { output += chunk })
    const [code] = await once(child, 'exit')
    t.equal(code, 2, `${name}: the unknown command is refused, not ignored`)
    t.match(output, /unknown command "bogus"/)
  }
})
