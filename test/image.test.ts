/**
 * The closest check of the image without a Docker engine: the Dockerfile's stages laid out in a temp folder
 * as it lays them out (the build context .dockerignore lets in, the build stage's RUN, the runtime stage's COPY
 * lines and production dependencies only), then the service started as a non-root user. A runtime import of a
 * dev dependency, a file the service reads that the image lacks, or one it cannot read as that user fails here.
 */
import t, { type Test } from 'tap'
import { spawn, spawnSync, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, sep } from 'node:path'
import { projectRoot } from '../project.js'
import { PANDAS_SPLIT } from './helper.js'
import { snsServer } from './support/sns.js'

const root = projectRoot()
const WORKDIR = '/app'

interface Instruction { keyword: string, args: string }
interface Stage { name?: string, instructions: Instruction[] }

/** The Dockerfile's stages: instructions with continuation lines joined, comments dropped. */
export function parseDockerfile (text: string): Stage[] {
  const stages: Stage[] = []
  const lines = text.replace(/\\\n/g, ' ').split('\n').map(line => line.trim()).filter(line => line && !line.startsWith('#'))
  for (const line of lines) {
    const [, keyword, args] = /^(\w+)\s+(.*)$/.exec(line) ?? []
    if (keyword === undefined) continue
    if (keyword.toUpperCase() === 'FROM') stages.push({ name: /\sAS\s+(\S+)/i.exec(args)?.[1], instructions: [] })
    else stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args })
  }
  return stages
}

/** Whether .dockerignore leaves a context path out: a pattern matches the path or one of its parents. */
export function dockerIgnored (patterns: string[], path: string): boolean {
  const parts = path.split(sep).join('/')
  let ignored = false
  for (const raw of patterns) {
    const negated = raw.startsWith('!')
    const pattern = (negated ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, '')
    const source = pattern.split('/').map(part => part === '**'
      ? '(?:.*)'
      : part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')).join('/').replace(/\(\?:\.\*\)\//g, '(?:.*/)?')
    if (new RegExp(`^${source}(?:/.*)?$`).test(parts)) ignored = !negated
  }
  return ignored
}

const ignorePatterns = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map(line => line.trim()).filter(line => line && !line.startsWith('#'))

t.test('.dockerignore keeps the service\'s sources and leaves tests, tools and local state out', async t => {
  for (const path of ['app.ts', 'server.ts', 'plugins/app/errors.ts', 'models', 'dashboard/index.html', 'examples/flows.json', 'package-lock.json']) {
    t.notOk(dockerIgnored(ignorePatterns, path), `${path} is in the context`)
  }
  for (const path of ['node_modules', 'dist/app.js', 'test/image.test.ts', 'bench/run.ts', 'scripts/evaluate.ts', '.git', 'data/spill.jsonl', 'training/train.py', 'docs/operations.md']) {
    t.ok(dockerIgnored(ignorePatterns, path), `${path} is not`)
  }
})

/** A user that is not root: the Dockerfile's (`node` in the official image) when this machine has it, else nobody. */
function runtimeUser (name: string): { name: string, uid: number, gid: number } {
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').map(line => line.split(':'))
  const entry = passwd.find(fields => fields[0] === name) ?? passwd.find(fields => fields[0] === 'nobody')
  if (!entry) throw new Error(`neither ${name} nor nobody in /etc/passwd`)
  return { name: entry[0], uid: Number(entry[2]), gid: Number(entry[3]) }
}

/**
 * A command with exactly this environment: tap's child-process hook adds its coverage loader to NODE_OPTIONS
 * (which would write into .tap/ as the runtime user); the image's processes have none of that.
 */
function bare (env: Record<string, string | undefined>, command: string, args: string[]): [string, string[]] {
  const pairs = Object.entries(env).filter(([, value]) => value !== undefined).map(([name, value]) => `${name}=${value}`)
  return ['/usr/bin/env', ['-i', ...pairs, command, ...args]]
}

function run (t: Test, env: Record<string, string | undefined>, command: string, args: string[], options: SpawnOptions) {
  const result = spawnSync(...bare(env, command, args), { ...options, encoding: 'utf8' })
  t.equal(result.status, 0, `${command} ${args.join(' ')}${result.status === 0 ? '' : `: ${result.stdout}${result.stderr}`}`)
}

const notRoot = process.getuid?.() !== 0
t.test('the image, laid out as the Dockerfile lays it out, serves /health, a prediction and /docs as a non-root user', {
  skip: notRoot && 'starting the service as another user needs root (CI runs as root)',
  timeout: 300_000,
}, async t => {
  const stages = parseDockerfile(readFileSync(join(root, 'Dockerfile'), 'utf8'))
  const runtime = stages.at(-1)!
  const temp = mkdtempSync(join(tmpdir(), 'ml-ids-image-'))
  t.teardown(() => rmSync(temp, { recursive: true, force: true }))
  chmodSync(temp, 0o755)
  const context = join(temp, 'context')
  cpSync(root, context, { recursive: true, filter: source => !dockerIgnored(ignorePatterns, relative(root, source)) })
  const stageDirs = new Map<string, string>()
  const args = new Map<string, string>()
  const env: Record<string, string> = {}
  let user = 'root'
  // npm as the tests' parent ran it leaves npm_config_* in the environment; the image's npm has none.
  const npmEnv = { PATH: process.env.PATH, HOME: process.env.HOME }

  for (const [index, stage] of stages.entries()) {
    const dir = join(temp, `stage-${index}`)
    mkdirSync(dir, { recursive: true })
    if (stage.name) stageDirs.set(stage.name, dir)
    const inStage = (path: string) => join(dir, path.startsWith(`${WORKDIR}/`) ? path.slice(WORKDIR.length + 1) : path)
    for (const { keyword, args: text } of stage.instructions) {
      if (keyword === 'COPY') {
        const words = text.split(/\s+/)
        const from = /^--from=(\S+)$/.exec(words[0])?.[1]
        const [sources, destination] = [words.slice(from ? 1 : 0, -1), words.at(-1)!]
        const base = from ? stageDirs.get(from)! : context
        for (const source of sources) {
          const target = destination.endsWith('/') && source !== '.' ? join(inStage(destination), source.split('/').at(-1)!) : inStage(destination)
          cpSync(from ? source.replace(`${WORKDIR}/`, `${base}/`) : join(base, source), target, { recursive: true })
        }
      } else if (keyword === 'RUN') {
        for (const command of text.split('&&').map(part => part.trim())) {
          if (/^npm ci\b.*--omit=dev/.test(command)) {
            // From the npm cache: the same lock file, production dependencies only.
            run(t, npmEnv, 'npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir })
          } else if (/^npm ci\b/.test(command)) {
            // The build's dev dependencies: this checkout's, installed from the same lock file.
            symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
          } else if (/^npm run \S+$/.test(command)) {
            run(t, npmEnv, 'npm', command.split(' ').slice(1), { cwd: dir })
          } else if (/^npm cache clean\b/.test(command)) {
            // Image size only: this machine's cache stays.
          } else if (/^mkdir -p \S+$/.test(command)) {
            mkdirSync(inStage(command.split(' ')[2]), { recursive: true })
          } else if (/^chown \S+ \S+$/.test(command)) {
            const [, , path] = command.split(' ')
            const owner = runtimeUser(command.split(' ')[1].split(':')[0])
            chownSync(inStage(path), owner.uid, owner.gid)
          } else {
            t.fail(`this test does not know how to lay out \`RUN ${command}\`: teach it`)
          }
        }
      } else if (keyword === 'ARG') {
        const [name, value = ''] = text.split('=')
        args.set(name, value)
      } else if (keyword === 'ENV') {
        for (const pair of text.split(/\s+/)) {
          const [name, value] = pair.split('=')
          env[name] = value
        }
      } else if (keyword === 'USER') {
        user = text.replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? '')
      }
    }
  }

  const dir = join(temp, `stage-${stages.length - 1}`)
  for (const tool of ['bench', 'scripts', 'test']) t.notOk(existsSync(join(dir, 'dist', tool)), `the image's dist/ has no ${tool}/`)
  const exec = (keyword: string) => {
    const text = runtime.instructions.filter(instruction => instruction.keyword === keyword).at(-1)?.args ?? '[]'
    return JSON.parse(text.replace(/^.*?CMD\s+/, '')) as string[]
  }
  const [program, ...entry] = [...exec('ENTRYPOINT'), ...exec('CMD')]
  t.equal(program, 'node')
  t.not(user, 'root', 'the image runs as a non-root user')
  const owner = runtimeUser(user)
  t.not(owner.uid, 0)
  // This machine's loopback and a free port, instead of the container's 0.0.0.0:5000; SNS on loopback,
  // so the compiled sender thread (a file of its own in dist/, loaded by URL) publishes from the image.
  const sns = await snsServer(t)
  const childEnv = {
    PATH: process.env.PATH,
    ...env,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    AWS_SNS_PREDICTIONS_TOPIC: 'arn:aws:sns:us-east-1:123456789012:ml-ids-image',
    AWS_SNS_HOST: sns.url,
    AWS_ACCESS_KEY: 'AKIDEXAMPLE',
    AWS_SECRET_KEY: 'secret',
  }
  const server = spawn(...bare(childEnv, process.execPath, entry), { cwd: dir, uid: owner.uid, gid: owner.gid, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { server.kill('SIGKILL') })
  let output = ''
  server.stdout.on('data', chunk => { output += chunk })
  server.stderr.on('data', chunk => { output += chunk })
  const url = await new Promise<string>((resolve, reject) => {
    server.stdout.on('data', () => {
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match) resolve(match[1])
    })
    server.on('exit', code => reject(new Error(`the service exited with ${code}: ${output}`)))
  })

  t.equal((await fetch(`${url}/health`)).status, 200, '/health')
  const prediction = await fetch(`${url}/api/predictions`, { method: 'POST', headers: { 'content-type': PANDAS_SPLIT }, body: readFileSync(join(dir, 'examples', 'flows.json')) })
  t.equal(prediction.status, 200, 'a prediction')
  t.equal(await prediction.text(), '[0,1]')
  for (let i = 0; sns.accepted.length < 2 && i < 200; i++) await new Promise(resolve => setTimeout(resolve, 50))
  t.same(sns.accepted.map(m => m.attributes.prediction.value).sort(), ['attack', 'benign'], 'its notifications reach SNS from the sender thread')
  const docs = await fetch(`${url}/docs`)
  t.equal(docs.status, 200, '/docs')
  t.match(await docs.text(), /swagger-ui/i)
  t.equal((await fetch(`${url}/docs/json`)).status, 200, 'the OpenAPI document')

  // The image's HEALTHCHECK command, as the same user, against the running service.
  const healthcheck = runtime.instructions.find(instruction => instruction.keyword === 'HEALTHCHECK')
  t.ok(healthcheck, 'the image has a HEALTHCHECK')
  const [checkProgram, ...checkArgs] = exec('HEALTHCHECK')
  t.equal(checkProgram, 'node')
  const check = spawn(...bare({ ...childEnv, PORT: new URL(url).port }, process.execPath, checkArgs), { cwd: dir, uid: owner.uid, gid: owner.gid, stdio: 'ignore' })
  t.equal((await once(check, 'exit'))[0], 0, 'the HEALTHCHECK passes')

  server.kill('SIGTERM')
  const [code] = await once(server, 'exit')
  t.equal(code, 0, code === 0 ? 'SIGTERM drains and exits 0' : `SIGTERM: exit ${code}: ${output.split('\n').slice(-6).join('\n')}`)
})
