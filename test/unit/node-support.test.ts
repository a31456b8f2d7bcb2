import t from 'tap'
import { spawnSync } from 'node:child_process'
import { projectRoot } from '../../project.js'

// What docs/development.md's Dependencies section tells a Node 20 user: the AWS SDK's warning, and its switch.
const major = Number(process.versions.node.split('.')[0])
const buildClient = "const { SNSClient } = require('@aws-sdk/client-sns'); new SNSClient({ region: 'eu-west-1' })"
const run = (env: NodeJS.ProcessEnv) =>
  spawnSync(process.execPath, ['-e', buildClient], { cwd: projectRoot(), encoding: 'utf8', env: { PATH: process.env.PATH, ...env } })

t.test('below Node 22 the AWS SDK warns once, naming Node 22; its switch silences it', { skip: major >= 22 && `Node ${major}: no warning to see` }, async t => {
  const warned = run({})
  t.equal(warned.status, 0, 'the client is built: the SDK runs on this Node')
  t.match(warned.stderr, /Warning: NodeVersionSupportWarning: The AWS SDK for JavaScript \(v3\)\nversions published after the first week of January 2027\nwill require node >=22\./)
  t.match(warned.stderr, `You are running node v${major}.`)
  const silenced = run({ AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' })
  t.equal(silenced.status, 0)
  t.equal(silenced.stderr, '')
})
