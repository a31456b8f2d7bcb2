import t from 'tap'
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ModelLoadError } from '../classifier/errors.js'
import { loadModel } from '../classifier/model.js'
import { build, modelDir } from './helper.js'

/** A copy of the bundled model with one file changed. */
function brokenModel (file: string, change: (text: string) => string) {
  const dir = mkdtempSync(join(tmpdir(), 'ml-ids-model-'))
  cpSync(modelDir, dir, { recursive: true })
  writeFileSync(join(dir, file), change(readFileSync(join(dir, file), 'utf8')))
  return dir
}

t.test('the bundled model loads', async t => {
  const model = loadModel()
  t.equal(model.metadata.name, 'cic-ids2018-xgb')
  t.equal(model.dir, modelDir)
})

t.test('a missing or malformed model fails with a message naming the file', async t => {
  const cases: Array<[string, string, RegExp]> = [
    ['missing directory', '/nonexistent/model', /cannot read \/nonexistent\/model\/metadata\.json: ENOENT/],
    ['metadata not JSON', brokenModel('metadata.json', () => '{'), /metadata\.json is not valid JSON/],
    ['metadata without features', brokenModel('metadata.json', text => JSON.stringify({ ...JSON.parse(text), features: undefined })), /metadata\.json is malformed: \/features/],
    ['threshold out of range', brokenModel('metadata.json', text => JSON.stringify({ ...JSON.parse(text), threshold: 2 })), /metadata\.json is malformed: \/threshold/],
    ['features disagreeing with the model', brokenModel('metadata.json', text => {
      const m = JSON.parse(text)
      return JSON.stringify({ ...m, features: [...m.features.slice(1), m.features[0]] })
    }), /disagree on the features/],
    ['a feature too few', brokenModel('metadata.json', text => {
      const m = JSON.parse(text)
      return JSON.stringify({ ...m, features: m.features.slice(1) })
    }), /reads 68 features but .* lists 67/],
    ['model not JSON', brokenModel('model.json', text => text.slice(0, 100)), /model\.json is not valid JSON/],
    ['unsupported objective', brokenModel('model.json', text => text.replace('"binary:logistic"', '"multi:softprob"')), /model\.json: objective multi:softprob is not supported/],
  ]
  for (const [name, dir, message] of cases) {
    t.throws(() => loadModel(dir), { name: ModelLoadError.name, message }, name)
  }
})

t.test('the app refuses to start on a bad MODEL_DIR, naming it', async t => {
  await t.rejects(build(t, { MODEL_DIR: '/nonexistent/model' }), /cannot read \/nonexistent\/model\/metadata\.json/)
})

t.test('MODEL_DIR picks the model the app serves', async t => {
  const dir = brokenModel('metadata.json', text => JSON.stringify({ ...JSON.parse(text), name: 'renamed' }))
  const app = await build(t, { MODEL_DIR: dir })
  t.equal((await app.inject('/api/model')).json().name, 'renamed')
})
