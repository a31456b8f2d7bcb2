import fp from 'fastify-plugin'
import { ConfigError, ModelLoadError } from '../../errors.js'
import type { Classifier } from '../../classifier/types.js'
import { createEmbeddedClassifier } from '../../classifier/embedded.js'
import { loadModel } from '../../classifier/model.js'
import { projectPath } from '../../project.js'

declare module 'fastify' {
  interface FastifyInstance {
    classifier: Classifier
  }
}

/** The model MODEL_DIR names (the bundled one when unset); a problem with it names the variable. */
function loadConfiguredModel (dir: string | undefined) {
  if (dir === undefined) return loadModel()
  try {
    return loadModel(projectPath(dir))
  } catch (err) {
    if (err instanceof ModelLoadError) throw new ModelLoadError(`MODEL_DIR ${dir}: ${err.message}`, { cause: err })
    throw err
  }
}

/** SageMaker when an endpoint is configured, otherwise the embedded model; chosen once, at start-up. */
export default fp(async function classifier (fastify) {
  const { config } = fastify
  let classifier: Classifier
  if (config.AWS_SAGEMAKER_ENDPOINT !== undefined) {
    if (config.AWS_REGION === undefined) {
      throw new ConfigError('AWS_REGION must be set when AWS_SAGEMAKER_ENDPOINT is (e.g. AWS_REGION=eu-west-1)')
    }
    // Its SDK is loaded only here: the embedded default never loads it.
    const { createSageMakerClassifier } = await import('../../classifier/sagemaker.js')
    classifier = createSageMakerClassifier({ ...config, AWS_SAGEMAKER_ENDPOINT: config.AWS_SAGEMAKER_ENDPOINT, AWS_REGION: config.AWS_REGION }, fastify.log)
  } else {
    classifier = createEmbeddedClassifier(loadConfiguredModel(config.MODEL_DIR), { threshold: config.ATTACK_THRESHOLD, noveltyThreshold: config.NOVELTY_THRESHOLD, driftWindowRows: config.DRIFT_WINDOW_ROWS })
  }
  const { name, version } = classifier.describe()
  fastify.log.info({ backend: classifier.backend, model: name, version }, 'classifier ready')
  fastify.decorate('classifier', classifier)
  fastify.addHook('onClose', async () => await classifier.close())
}, { name: 'classifier', dependencies: ['env'] })
