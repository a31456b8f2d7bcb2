import t from 'tap'
import { build } from '../helper.js'

t.test('defaults: port 5000 on all interfaces, the embedded model', async t => {
  const app = await build(t)
  t.equal(app.config.PORT, 5000)
  t.equal(app.config.HOST, '0.0.0.0')
  t.equal(app.classifier.backend, 'local')
})

t.test('a wrong value fails start-up naming the variable', async t => {
  const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ PORT: 'abc' }, /PORT must be integer/],
    [{ PORT: '70000' }, /PORT must be <= 65535/],
    [{ MAX_ROWS: '0' }, /MAX_ROWS must be >= 1/],
    [{ AWS_REGION: 'Ireland' }, /AWS_REGION must match pattern/],
    [{ AWS_SAGEMAKER_ENDPOINT: 'has spaces in it' }, /AWS_SAGEMAKER_ENDPOINT must match pattern/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL must be equal to constant/],
    [{ AWS_SAGEMAKER_ENDPOINT: 'ml-ids' }, /AWS_REGION must be set when AWS_SAGEMAKER_ENDPOINT is/],
    [{ AWS_SAGEMAKER_ENDPOINT: 'ml-ids', AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY: 'AKID' }, /set both AWS_ACCESS_KEY and AWS_SECRET_KEY/],
  ]
  for (const [env, message] of cases) {
    await t.rejects(build(t, env), { message }, JSON.stringify(env))
  }
})

t.test('an empty variable counts as unset', async t => {
  const app = await build(t, { AWS_SAGEMAKER_ENDPOINT: '', AWS_REGION: '', PORT: '' })
  t.equal(app.classifier.backend, 'local')
  t.equal(app.config.PORT, 5000)
})

t.test('SageMaker is chosen when an endpoint is configured; keys are optional', async t => {
  const app = await build(t, { AWS_SAGEMAKER_ENDPOINT: 'ml-ids', AWS_REGION: 'us-east-1' })
  t.equal(app.classifier.backend, 'sagemaker')
})
