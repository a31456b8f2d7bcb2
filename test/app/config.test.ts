import t from 'tap'
import { build } from '../helper.js'
import { describeErrors } from '../../plugins/external/env.js'

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
    [{ LOG_LEVEL: 'loud' }, /^env\/LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent \(given "loud"\)$/],
    [{ NOTIFY: 'ALL', PORT: 'x' }, /^env\/PORT must be integer \(given "x"\); env\/NOTIFY must be one of all, attacks, unfamiliar, none \(given "ALL"\)$/],
    [{ AWS_SNS_PREDICTIONS_TOPIC: ' arn:aws:sns:us-east-1:123456789012:t' }, /AWS_SNS_PREDICTIONS_TOPIC must match pattern .* \(given " arn:aws:sns:us-east-1:123456789012:t"\)$/],
    [{ AWS_SAGEMAKER_ENDPOINT: 'ml-ids' }, /AWS_REGION must be set when AWS_SAGEMAKER_ENDPOINT is/],
    [{ AWS_SAGEMAKER_ENDPOINT: 'ml-ids', AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY: 'AKID' }, /set both AWS_ACCESS_KEY and AWS_SECRET_KEY/],
    [{ AWS_SNS_PREDICTIONS_TOPIC: 'arn:aws:sns:eu-west-1:123456789012:t', AWS_SECRET_KEY: 'secret' }, /set both AWS_ACCESS_KEY and AWS_SECRET_KEY/],
    [{ API_KEYS: ',' }, /^API_KEYS is set but names no key \(only commas and spaces\): set at least one key, or unset API_KEYS/],
    [{ API_KEYS: ' , ' }, /^API_KEYS is set but names no key/],
    [{ MODEL_DIR: '/nonexistent' }, /^MODEL_DIR \/nonexistent: cannot read \/nonexistent\/metadata\.json/],
  ]
  for (const [env, message] of cases) {
    await t.rejects(build(t, env), { message }, JSON.stringify(env))
  }
})

t.test('a credential that breaks a rule is named, never repeated', async t => {
  const message = describeErrors([{ instancePath: '/AWS_SECRET_KEY', keyword: 'pattern', message: 'must match pattern "x"', params: {} }], { AWS_SECRET_KEY: 'wJalrXUtnFEMI/K7MDENG' })
  t.equal(message, 'env/AWS_SECRET_KEY must match pattern "x"')
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
