import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const child = fileURLToPath(new URL('./support/imported-packages.js', import.meta.url))

/** The AWS packages the app's main thread imports when built with `env`. */
function importedPackages (env: NodeJS.ProcessEnv): string[] {
  const run = spawnSync(process.execPath, [child], {
    env: { PATH: process.env.PATH, APP_ENV: JSON.stringify({ NOTIFY_DATA_DIR: mkdtempSync(join(tmpdir(), 'ml-ids-lazy-')), ...env }) },
    encoding: 'utf8',
    timeout: 60_000,
  })
  if (run.status !== 0) throw new Error(`the child failed (${run.status}): ${run.stderr}`)
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as string[]
}

t.test('the embedded default loads no AWS SDK; each SDK is loaded where its service is configured', async t => {
  t.same(importedPackages({}), [], 'embedded model, no topic: nothing of the AWS SDK')
  const sns = { AWS_SNS_PREDICTIONS_TOPIC: 'arn:aws:sns:eu-west-1:123456789012:t', AWS_SNS_HOST: 'http://127.0.0.1:9', AWS_ACCESS_KEY: 'AKID', AWS_SECRET_KEY: 'secret' }
  t.same(importedPackages(sns), [], 'a topic with the calls in the sender thread: the main thread loads no SDK')
  t.ok(importedPackages({ ...sns, NOTIFY_SENDER: 'inline' }).includes('@aws-sdk/client-sns'), 'calls on the event loop: the SNS SDK, here')
  t.ok(importedPackages({ AWS_SAGEMAKER_ENDPOINT: 'e', AWS_SAGEMAKER_HOST: 'http://127.0.0.1:9', AWS_REGION: 'eu-west-1' }).includes('@aws-sdk/client-sagemaker-runtime'), 'a SageMaker endpoint: its SDK')
})
