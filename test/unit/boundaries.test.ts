import t from 'tap'
import { join } from 'node:path'
import { ESLint } from 'eslint'
import { projectRoot } from '../../project.js'

/** Folders depend one way (eslint.config.js): a wrong arrow fails lint, a right one does not. */
const eslint = new ESLint({ cwd: projectRoot() })

async function problems (file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(projectRoot(), file) })
  return result.messages.filter(m => m.ruleId === '@typescript-eslint/no-restricted-imports').map(m => m.message)
}

t.test('wrong arrows fail lint', async t => {
  const wrong: Array<[string, string]> = [
    ['classifier/probe.ts', "import { notificationsFor } from '../notifications/message.js'\nexport const x = notificationsFor\n"],
    ['classifier/probe.ts', "import { csvToFrame } from '../input/csv.js'\nexport const x = csvToFrame\n"],
    ['classifier/probe.ts', "import { createWorkerPool } from '../workers/pool.js'\nexport const x = createWorkerPool\n"],
    ['classifier/probe.ts', "import { errorCodes } from 'fastify'\nexport const x = errorCodes\n"],
    ['input/probe.ts', "import { createWorkerPool } from '../workers/pool.js'\nexport const x = createWorkerPool\n"],
    ['input/probe.ts', "import { notificationsFor } from '../notifications/message.js'\nexport const x = notificationsFor\n"],
    ['notifications/probe.ts', "import { csvToFrame } from '../input/csv.js'\nexport const x = csvToFrame\n"],
  ]
  for (const [file, code] of wrong) {
    const found = await problems(file, code)
    t.equal(found.length, 1, `${file}: ${code.split('\n')[0]}`)
  }
})

t.test('right arrows pass', async t => {
  const right: Array<[string, string]> = [
    ['classifier/probe.ts', "import type { FastifyBaseLogger } from 'fastify'\nimport { checkFrame } from './frame.js'\nexport const x = checkFrame\nexport type L = FastifyBaseLogger\n"],
    ['input/probe.ts', "import { checkFrame } from '../classifier/frame.js'\nexport const x = checkFrame\n"],
    ['workers/probe.ts', "import { notificationsFor } from '../notifications/message.js'\nimport { csvToFrame } from '../input/csv.js'\nimport { loadModel } from '../classifier/model.js'\nexport const x = [notificationsFor, csvToFrame, loadModel]\n"],
  ]
  for (const [file, code] of right) t.same(await problems(file, code), [], `${file}: ${code.split('\n')[0]}`)
})
