import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import YAML from 'yaml'
import { createApp } from '../app.js'
import { projectRoot } from '../project.js'

/** The OpenAPI document as the app generates it on its defaults (the embedded model, default limits). */
export async function generateSpec (): Promise<string> {
  const app = createApp({ env: {} })
  await app.ready()
  try {
    // Without YAML anchors: some client generators do not follow them.
    return YAML.stringify(app.swagger(), { aliasDuplicateObjects: false, lineWidth: 0 })
  } finally {
    await app.close()
  }
}

export const specPath = join(projectRoot(), 'api-spec.yaml')

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(specPath, await generateSpec())
  console.log(`wrote ${specPath}`)
}
