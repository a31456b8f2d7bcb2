import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { projectRoot } from '../project.js'
import { Value } from '@sinclair/typebox/value'
import { Evaluation, FamilyRate, ModelMetadata, OperatingPoint, Preprocessing } from '../schemas/model.js'
import { ModelLoadError } from '../errors.js'
import { loadNoveltyDetector, type NoveltyDetector } from './novelty.js'
import { parseXGBoostModel, type XGBoostModel } from './xgboost.js'

export const DEFAULT_MODEL = 'cic-ids2018-xgb'

export const defaultModelDir = (): string => join(projectRoot(), 'models', DEFAULT_MODEL)

export interface LoadedModel {
  readonly dir: string
  readonly metadata: ModelMetadata
  readonly booster: XGBoostModel
  /** The unfamiliar-flow detector beside the model (novelty.json), when it has one. */
  readonly novelty?: NoveltyDetector | undefined
}

function readJson (path: string): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ModelLoadError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ModelLoadError(`${path} is not valid JSON: ${(err as Error).message}`)
  }
}

/** Loads `model.json` and `metadata.json` from a model directory; every problem is a ModelLoadError naming the file. */
export function loadModel (dir: string = defaultModelDir()): LoadedModel {
  dir = resolve(dir)
  const metadataPath = join(dir, 'metadata.json')
  const metadata = readJson(metadataPath)
  const references = [Preprocessing, Evaluation, FamilyRate, OperatingPoint]
  if (!Value.Check(ModelMetadata, references, metadata)) {
    const problems = [...Value.Errors(ModelMetadata, references, metadata)].slice(0, 3).map(e => `${e.path || '/'}: ${e.message}`)
    throw new ModelLoadError(`${metadataPath} is malformed: ${problems.join('; ')}`)
  }
  const table = metadata.operating_points ?? []
  const unordered = table.findIndex((point, i) => i > 0 && !(point.threshold > table[i - 1].threshold &&
    point.recall <= table[i - 1].recall && point.false_positive_rate <= table[i - 1].false_positive_rate))
  if (unordered !== -1) {
    throw new ModelLoadError(`${metadataPath} is malformed: /operating_points/${unordered}: thresholds must rise ` +
      'and recall and false-positive rate must not')
  }
  const modelPath = join(dir, 'model.json')
  let booster: XGBoostModel
  try {
    booster = parseXGBoostModel(readJson(modelPath))
  } catch (err) {
    if (err instanceof ModelLoadError) throw err
    throw new ModelLoadError(`${modelPath}: ${(err as Error).message}`)
  }
  if (booster.numFeatures !== metadata.features.length) {
    throw new ModelLoadError(`${modelPath} reads ${booster.numFeatures} features but ${metadataPath} lists ${metadata.features.length}`)
  }
  if (booster.featureNames && booster.featureNames.join() !== metadata.features.join()) {
    throw new ModelLoadError(`${modelPath} and ${metadataPath} disagree on the features or their order`)
  }
  return { dir, metadata, booster, novelty: loadNoveltyDetector(dir, metadata.features) }
}
